// SPDX-License-Identifier: GPL-2.0-only
// libFuzzer entry for the object diff: two objects in, a refusal or a patch
// object out. Built by Benchmarks/fuzz-diff.sh with `-sanitize=fuzzer
// -DFUZZING`; in a normal build it replays inputs given on the command line.
//
// An input is `[rules byte][u32 little-endian length of the original]
// [original][patched]`: bit 0 of the rules byte picks user-space rules.
// Inputs too short to split diff one object against itself.
import CSutureShims
import ELF
import PatchCore
import Platform

/// Splits one input into the rules and the two objects.
func split(_ bytes: [UInt8]) -> (userSpace: Bool, original: [UInt8], patched: [UInt8])? {
    guard bytes.count > 5 else { return nil }
    let userSpace = bytes[0] & 1 == 1
    let length = Int(bytes[1]) | Int(bytes[2]) << 8 | Int(bytes[3]) << 16 | Int(bytes[4]) << 24
    let rest = Array(bytes[5...])
    guard length <= rest.count else { return (userSpace, rest, rest) }
    return (userSpace, Array(rest[..<length]), Array(rest[length...]))
}

/// Diffs one input and, when a patch comes out, writes it and reads it back.
func exercise(_ bytes: [UInt8]) {
    guard let (userSpace, originalBytes, patchedBytes) = split(bytes),
        let original = try? ELFFile.parse(originalBytes, path: "original"),
        let patched = try? ELFFile.parse(patchedBytes, path: "patched")
    else { return }
    let rules: TargetRules = userSpace ? .userSpace() : .kernel()
    guard let result = try? ObjectDiff.run(original: original, patched: patched, rules: rules) else { return }
    _ = result.report.json.serialized()
    if let patch = result.patch, let written = try? ELFWriter.write(patch.object) {
        _ = try? ELFFile.parse(written, path: "patch")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    exercise(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@main
struct DiffFuzz {
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
