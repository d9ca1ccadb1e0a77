// SPDX-License-Identifier: GPL-2.0-only
// libFuzzer entry for the ELF reader. Built by Benchmarks/fuzz-elf.sh with
// `-sanitize=fuzzer -DFUZZING`, `main` hands over to libFuzzer's driver. In a
// normal build the same target replays files given on the command line, so
// the entry point is compiled and exercised in every build.
import CSutureShims
import ELF
import Platform

/// Parses one input and, if it parses, walks everything a user of the
/// library can reach: the JSON dump, notes, modinfo, the rewrite model.
func exercise(_ bytes: [UInt8]) {
    guard let file = try? ELFFile.parse(bytes, path: "fuzz") else { return }
    var out = ByteWriter()
    ELFDump.writeJSON(file, to: &out)
    ELFDump.writeText(file, to: &out)
    _ = try? file.notes()
    _ = file.modinfo()
    if let object = try? RelocatableObject(file), let written = try? ELFWriter.write(object) {
        _ = try? ELFFile.parse(written, path: "fuzz-rewritten")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    exercise(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@main
struct ELFFuzz {
    static func main() {
        #if FUZZING
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            _ = LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
        #else
            for path in CommandLine.arguments.dropFirst() {
                if let bytes = try? FileSystem.read(path) { exercise(bytes) }
            }
        #endif
    }
}
