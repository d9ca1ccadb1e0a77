// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Glibc
import PatchCore
import Platform
import TestSupport
import Testing

/// `suture diff` and `suture elf` on hostile objects and output paths.
@Suite(.serialized) struct HostileObjectTests {
    /// Mutated copies of real objects (the user-space fixtures, before and
    /// after their diff, and small kernel modules) used to crash the diff
    /// with SIGILL (35 of 3,000): a symbol past its section's end, a
    /// relocation past its section's end. Every mutation must end in a
    /// result or a refusal, exit status 0 or 1, never a signal.
    @Test func mutatedObjectsNeverCrashTheDiff() throws {
        let dir = try TemporaryDirectory(prefix: "suture-mutate")
        defer { dir.remove() }
        var pairs: [(original: String, patched: String, userSpace: Bool)] = []
        for name in ["new-function", "data-initializer", "group", "removed-function"] {
            let sub = Path.join(dir.path, name)
            try FileSystem.makeDirectories(sub)
            let (o, p) = try UserSpaceFixtureTests.build(name, in: sub)
            pairs.append((o, p, true))
        }
        let modules = try Command.output([
            "sh", "-c", "find /lib/modules -name '*.ko' -size -16k 2>/dev/null | sort | head -3",
        ])
        .split(separator: "\n").map(String.init)
        for ko in modules { pairs.append((ko, ko, false)) }
        var generator = SplitMix(seed: 0x5eed)
        let mutated = Path.join(dir.path, "mutated.o")
        var crashes: [String] = []
        let rounds = 400
        for round in 0..<rounds {
            let pair = pairs[Int(generator.next() % UInt64(pairs.count))]
            var bytes = try FileSystem.read(pair.patched)
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let at = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: generator.next())
                case 1:
                    let value = [0, UInt64.max, 0x7fff_ffff_ffff_ffff, 0x8000_0000, generator.next()][
                        Int(generator.next() % 5)]
                    let width = [2, 4, 8][Int(generator.next() % 3)]
                    for k in 0..<width where at + k < bytes.count {
                        bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k)))
                    }
                default: bytes[at] ^= UInt8(1) << (generator.next() % 8)
                }
            }
            try FileSystem.write(mutated, bytes)
            let swap = generator.next() % 2 == 0
            let args =
                ["diff"] + (pair.userSpace ? ["--user-space"] : [])
                + (swap ? [mutated, pair.original] : [pair.original, mutated])
            let run = try Command.run(
                [try SutureBinary.checked()] + args, environment: Command.environment(["SWIFT_BACKTRACE": "enable=no"]),
                timeout: 60)
            guard case .exited(let status) = run.termination, status == 0 || status == 1 else {
                let kept = Path.join(FileSystem.environment("TMPDIR") ?? "/tmp", "suture-mutation-crash-\(round).o")
                try? FileSystem.write(kept, bytes)
                crashes.append("round \(round) (\(pair.patched), kept as \(kept)): \(run.termination)")
                continue
            }
        }
        #expect(
            crashes.isEmpty,
            "\(crashes.count) of \(rounds) mutations crashed suture diff:\n\(crashes.joined(separator: "\n"))")
    }

    /// The example from the review: a function whose value lies past its
    /// section's end is refused, naming the symbol.
    @Test func symbolPastItsSectionIsRefused() throws {
        let dir = try TemporaryDirectory(prefix: "suture-past")
        defer { dir.remove() }
        let (original, patched) = try UserSpaceFixtureTests.build("new-function", in: dir.path)
        let file = try ELFFile.open(patched)
        let symbol = try #require(file.symbols.first { $0.name == "compute" && $0.isFunction })
        let table = try #require(file.symbolTableIndex)
        var bytes = try FileSystem.read(patched)
        let entry = Int(file.sections[table].offset) + symbol.index * 24
        let value = UInt64(1 << 40)
        for k in 0..<8 { bytes[entry + 8 + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        let bad = Path.join(dir.path, "bad.o")
        try FileSystem.write(bad, bytes)
        let run = try Command.run([try SutureBinary.checked(), "diff", "--user-space", "--json", original, bad])
        #expect(run.termination == .exited(1), "\(run.termination)")
        let json = try JSON.parse(run.stdout)
        #expect(json["error"]?["code"]?.stringValue == "diff-unsupported-input")
        let message = json["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("compute") && message.contains("past the end of section"), "\(message)")
    }

    /// `suture diff -o` used to write `OUT.tmp.PID` through a planted
    /// symbolic link. Links are planted for the next PIDs the system will
    /// hand out; none of their targets may change.
    @Test func plantedSymlinksDoNotRedirectTheOutput() throws {
        let dir = try TemporaryDirectory(prefix: "suture-plant")
        defer { dir.remove() }
        let (original, patched) = try UserSpaceFixtureTests.build("new-function", in: dir.path)
        let victim = Path.join(dir.path, "victim")
        try FileSystem.write(victim, "precious\n")
        let out = Path.join(dir.path, "patch.o")
        let last = Int((try FileSystem.readText("/proc/sys/kernel/ns_last_pid")).trimmingWhitespace()) ?? 0
        for pid in (last + 1)...(last + 400) { try FileSystem.symlink(target: victim, at: "\(out).tmp.\(pid)") }
        let run = try Command.run([try SutureBinary.checked(), "diff", "--user-space", original, patched, "-o", out])
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        #expect(try FileSystem.readText(victim) == "precious\n", "suture diff -o wrote through a planted symlink")
        #expect(try ELFFile.open(out).section(named: ".suture.manifest") != nil)
    }

    /// With `--json`, an output that cannot be written gives one error
    /// object, not the report followed by an error.
    @Test func unwritableOutputIsOneJSONObject() throws {
        let dir = try TemporaryDirectory(prefix: "suture-unwritable")
        defer { dir.remove() }
        let (original, patched) = try UserSpaceFixtureTests.build("new-function", in: dir.path)
        let run = try Command.run([
            try SutureBinary.checked(), "diff", "--user-space", "--json", original, patched,
            "-o", Path.join(dir.path, "missing/patch.o"),
        ])
        #expect(run.termination == .exited(1))
        let lines = run.stdoutText.split(separator: "\n")
        #expect(lines.count == 1, "more than one object: \(run.stdoutText)")
        let json = try JSON.parse(run.stdout)
        #expect(json["error"]?["code"] != nil && json["functions"] == nil, "\(run.stdoutText)")
    }

    /// Argument-parser usage errors under `--json` are one error object too.
    @Test(arguments: [
        ["diff", "--json", "--bogus", "a", "b"], ["diff", "--json", "only-one"],
        ["elf", "--json"], ["list", "--json", "--nope"],
    ])
    func usageErrorsUnderJSONAreOneObject(_ arguments: [String]) throws {
        let run = try Command.run([try SutureBinary.checked()] + arguments)
        #expect(run.termination == .exited(64), "\(arguments): \(run.termination)")
        let json = try JSON.parse(run.stdout)
        #expect(json["error"]?["code"]?.stringValue == "usage", "\(run.stdoutText)")
        let message = json["error"]?["message"]?.stringValue ?? ""
        #expect(message.isEmpty == false)
        #expect(run.stdoutText.split(separator: "\n").count == 1)
    }

    /// `suture elf` and `suture diff` on a FIFO used to hang.
    @Test func fifoIsRefusedAtOnce() throws {
        let dir = try TemporaryDirectory(prefix: "suture-fifo")
        defer { dir.remove() }
        let fifo = Path.join(dir.path, "fifo.o")
        try #require(mkfifo(fifo, 0o600) == 0)
        for arguments in [["elf", fifo], ["diff", fifo, fifo]] {
            let run = try Command.run([try SutureBinary.checked()] + arguments, timeout: 20)
            #expect(!run.timedOut, "\(arguments) hung on a FIFO")
            #expect(run.termination == .exited(1), "\(arguments): \(run.termination)")
            #expect(run.stderrText.contains("FIFO"), "\(run.stderrText)")
        }
    }
}

/// A small deterministic generator (SplitMix64), so that a failing
/// mutation can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Inputs the diff fuzzer (Benchmarks/fuzz-diff.sh) once crashed on, in its
/// format: `[rules][u32 length of the original][original][patched]`. Run in
/// process: a trap ends the test run.
@Suite struct DiffFuzzRegressionTests {
    static let directory = Path.join(Path.directory(of: #filePath), "Fixtures/fuzz")

    /// `addend-overflow.bin`: a relocation addend near Int64.max overflowed
    /// resolving the relocation's target.
    /// `nofiledata-section.bin`: a section whose type says it has no file data
    /// but whose size is not 0 held a function without size.
    /// `special-entries-past-data.bin`: a special section (entries kept per
    /// function) whose bytes were not in the file.
    /// `huge-nobits.bin`: a symbol without size in an SHT_NOBITS section of
    /// exabytes, whose zeros the diff tried to allocate.
    /// `huge-entry-size.bin`: a mergeable section with an `sh_entsize` past
    /// Int.max.
    @Test(arguments: [
        "addend-overflow.bin", "nofiledata-section.bin", "special-entries-past-data.bin", "huge-nobits.bin",
        "huge-entry-size.bin",
    ])
    func replays(_ name: String) throws {
        let bytes = try FileSystem.read(Path.join(Self.directory, name))
        try #require(bytes.count > 5)
        let length = Int(bytes[1]) | Int(bytes[2]) << 8 | Int(bytes[3]) << 16 | Int(bytes[4]) << 24
        let rest = Array(bytes[5...])
        let (a, b) = length <= rest.count ? (Array(rest[..<length]), Array(rest[length...])) : (rest, rest)
        let original = try ELFFile.parse(a, path: "original")
        let patched = try ELFFile.parse(b, path: "patched")
        let rules: TargetRules = bytes[0] & 1 == 1 ? .userSpace() : .kernel()
        // A result or a refusal; either is fine, a trap is not.
        _ = try? ObjectDiff.run(original: original, patched: patched, rules: rules)
    }
}
