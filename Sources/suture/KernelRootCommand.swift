// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform
import TargetKernel

extension KernelCommand {
    /// `suture kernel root`: the build root of a kernel, made when missing.
    struct Root: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "root",
            abstract:
                "Make (once) and check the build root of a kernel whose compiler is not the host's; prints where it is."
        )

        @OptionGroup var kernel: KernelOption
        @OptionGroup var cacheOption: CacheOption
        @OptionGroup var output: JSONOption

        func run() throws {
            Cleanup.installSignalHandling()
            try reportingErrors(json: output.json) {
                let target = try cacheOption.resolver.resolve(kernel.kernel)
                let check = CompilerCheck.check(kernelCompiler: target.compiler)
                if check.matches {
                    if output.json {
                        printJSON(
                            .object([("release", .string(target.release)), ("root", .null), ("host", .bool(true))]))
                    } else {
                        writeStandardOutput(
                            "\(target.release): built by the host's compiler (\(check.host ?? "")); no build root needed\n"
                        )
                    }
                    return
                }
                let outcome = try BuildRoots(cache: cacheOption.cache).ensure(for: target)
                if output.json {
                    guard case .object(var pairs) = outcome.json else { return }
                    pairs.insert(("release", .string(target.release)), at: 0)
                    printJSON(.object(pairs))
                } else {
                    writeStandardOutput(
                        "\(target.release): build root \(outcome.root.path) with \(outcome.version) (\(outcome.reused ? "reused" : "made") in \(String(format1: outcome.seconds)) s)\n"
                    )
                }
            }
        }
    }
}
