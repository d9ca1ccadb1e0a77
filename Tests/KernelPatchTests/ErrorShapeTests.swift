// SPDX-License-Identifier: GPL-2.0-only
import KernelPatch
import Platform
import SystemPackage
import TargetKernel
import Testing

/// Errors keep their cause (code and errno) and their refusals, and
/// `--json` shows both.
@Suite struct ErrorShapeTests {
    @Test func theCauseChainKeepsCodesAndErrno() {
        let system = PlatformError(.systemCall, errno: .noSuchFileOrDirectory, "open /nonexistent/Module.symvers")
        let kernel = KernelError(.missingPiece, "reading the headers: \(system.description)", cause: system)
        let build = BuildError(.io, kernel.description, cause: kernel)
        #expect(build.cause?.code == "missing-piece")
        #expect(build.cause?.cause?.errno == .noSuchFileOrDirectory)
        let json = build.json
        #expect(json["code"]?.stringValue == "build-io")
        #expect(json["message"]?.stringValue?.hasSuffix("No such file or directory") == true, "\(json)")
        #expect(json["cause"]?["code"]?.stringValue == "missing-piece")
        #expect(json["cause"]?["cause"]?["code"]?.stringValue == "system-call")
        #expect(json["cause"]?["cause"]?["errno"] == .int(2))
        #expect(json["refusals"] == nil)
    }

    @Test func refusalsAreListed() {
        let refusals = [
            RefusedChange(object: "kernel/panic.o", function: "panic_timeout", reason: "initializer changed"),
            RefusedChange(object: "fs/proc/cmdline.o", function: "proc_cmdline_init", reason: "__init"),
        ]
        let error = BuildError(.refused, "2 change(s) cannot be live-patched", refusals: refusals)
        let listed = error.json["refusals"]?.arrayValue ?? []
        #expect(listed.count == 2)
        #expect(listed.first?["object"]?.stringValue == "kernel/panic.o")
        #expect(listed.first?["function"]?.stringValue == "panic_timeout")
        #expect(listed.last?["reason"]?.stringValue == "__init")
        #expect(error.json.objectValue?.map(\.0) == ["code", "message", "refusals"])
    }
}
