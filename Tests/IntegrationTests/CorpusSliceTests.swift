// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing

/// A small seeded slice of the real-fix corpus (Benchmarks/corpus.sh): the
/// first files, in the seed's order, that Debian 12's 6.12.117 → 6.12.118
/// security upload changes and the amd64 configuration builds, each built
/// as its own patch for 6.12.117 and loaded, its transition completed and
/// unloaded in one guest boot of that kernel. Any build-error or
/// guest-failure fails the test; the slice must hold vmlinux and module
/// files. Fetches and prepares what it needs (network on a fresh cache).
/// With the same kernels and tree: the build-time run-pre check against
/// 6.12.118's source for the 6.12.117 image.
@Suite(.serialized)
struct CorpusSliceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static let pair = "117:118"
    static let seed = "1"
    static let sample = 4

    @Test func seededSliceBuildsLoadsAndUnloads() throws {
        let out = try TemporaryDirectory(prefix: "suture-corpus-slice")
        defer { out.remove() }
        var environment = ProcessInfo.processInfo.environment
        environment["SUTURE_BINARY"] = try SutureBinary.checked()
        let started = Clock.now()
        let run = try Command.run(
            [
                "bash", "\(Self.root)/Benchmarks/corpus.sh", "--pairs", Self.pair, "--seed", Self.seed,
                "--sample", String(Self.sample), "--out", out.path, "--vm-timeout", "900",
            ], environment: environment, timeout: 2400)
        print("corpus slice: \(Int((Clock.now() - started).rounded())) s\n\(run.stdoutText)")
        let summaryText = FileSystem.readTextIfPresent(Path.join(out.path, "summary.json"))
        let summary = try JSON.parse(try #require(summaryText, "no summary: \(run.stderrText)"))
        #expect(summary["tried"]?.intValue == Int64(Self.sample), "\(run.stderrText)")
        #expect((summary["vmlinuxFiles"]?.intValue ?? 0) > 0, "the slice has no vmlinux file")
        #expect((summary["moduleFiles"]?.intValue ?? 0) > 0, "the slice has no module file")
        #expect(summary["categories"]?["buildError"]?.intValue == 0, "build errors:\n\(run.stdoutText)")
        #expect(summary["categories"]?["guestFailure"]?.intValue == 0, "guest failures:\n\(run.stdoutText)")
        #expect(
            (summary["categories"]?["ok"]?.intValue ?? 0) > 0, "no file of the slice loaded:\n\(run.stdoutText)")
        #expect(run.termination == .exited(0), "\(run.stderrText)")
    }

    // MARK: - The run-pre check against a real neighbouring version

    static let older = "6.12.117+deb12-amd64"
    static let newer = "6.12.118+deb12-amd64"
    static let file = "fs/dax.c"

    /// The build-time run-pre check with the source of a real neighbouring
    /// Debian version: the 6.12.117 image, built with 6.12.118's fs/dax.c
    /// (`--source-diff`), where dax_dedupe_file_range_compare returns
    /// another value. A patch to that function is refused naming it, the
    /// first differing offset and both byte runs; the same change made on
    /// 6.12.117's own source passes, and so does a patch to a function of
    /// the same file that 6.12.118 did not change. Uses the kernels and the
    /// prepared tree of the slice above.
    @Test func neighbourVersionIsRefusedWhereItsCodeDiffers() throws {
        let started = Clock.now()
        let scratch = try Scratch("suture-runpre-neighbour")
        for release in [Self.older, Self.newer] {
            let fetch = try SutureBinary.run(["kernel", "fetch", release, "--json"], timeout: 1800)
            try #require(fetch.termination == .exited(0), "cannot fetch \(release): \(fetch.stderrText)")
        }
        let prepare = try SutureBinary.run(["kernel", "prepare", "--kernel", Self.older, "--json"], timeout: 1800)
        try #require(prepare.termination == .exited(0), "cannot prepare \(Self.older): \(prepare.stderrText)")
        let tree = try #require(try JSON.parse(prepare.stdout)["sourceDirectory"]?.stringValue)
        let ours = Path.join(tree, Self.file)
        let theirs = try Self.newerFile(into: scratch)
        let neighbour = try Self.diff(ours, theirs, to: scratch.file("neighbour-118.diff"))
        let (ourText, theirText) = (try FileSystem.readText(ours), try FileSystem.readText(theirs))

        // 6.12.118 changed `return ret;` to `return compared;` in it.
        let (check, stricter) = ("\t\tif (compared < 0)\n", "\t\tif (compared <= 0)\n")
        let dedupe = try Self.patch(theirText, check, stricter, scratch, "dedupe-118")
        let mismatch = try Self.build(["--source-diff", neighbour, dedupe], scratch)
        #expect(mismatch.termination == .exited(1), "expected a refusal: \(mismatch.stderrText)")
        let error = try JSON.parse(mismatch.stdout)["error"]
        #expect(error?["code"]?.stringValue == "build-code-mismatch", "\(mismatch.stdoutText)")
        let message = error?["message"]?.stringValue ?? ""
        let lines = message.split(separator: "\n").map(String.init)
        let head = try #require(
            lines.firstIndex { $0.contains("dax_dedupe_file_range_compare (fs/dax.o, vmlinux) differs from") },
            "dax_dedupe_file_range_compare not named: \(message)")
        #expect(lines[head].contains(" at offset 0x"), "\(message)")
        // Both byte runs, the first differing byte in brackets and not the same.
        try #require(lines.count > head + 2, "\(message)")
        let original = lines[head + 1].trimmingWhitespace()
        let shipped = lines[head + 2].trimmingWhitespace()
        #expect(original.hasPrefix("original: ") && shipped.hasPrefix("shipped:  "), "\(message)")
        let first = Self.bracketed(original)
        #expect(first != nil && Self.bracketed(shipped) != nil && first != Self.bracketed(shipped), "\(message)")
        // The runs start up to 4 bytes before the offset, where both agree.
        let offset = try #require(
            lines[head].range(of: " at offset 0x").flatMap {
                Int(lines[head][$0.upperBound...].prefix { $0.isHexDigit }, radix: 16)
            }, "\(message)")
        let (ourRun, shippedRun) = (Self.tokens(original), Self.tokens(shipped))
        let lead = min(offset, 4)
        #expect(ourRun.count > lead && ourRun[lead].hasPrefix("["), "\(message)")
        #expect(Array(ourRun.prefix(lead)) == Array(shippedRun.prefix(lead)), "\(message)")
        print("neighbour refusal:\n\(lines[head])\n\(original)\n\(shipped)")

        // The same change on 6.12.117's own source passes.
        let own = try Self.build([try Self.patch(ourText, check, stricter, scratch, "dedupe-117")], scratch)
        #expect(own.termination == .exited(0), "\(own.stdoutText)\(own.stderrText)")
        #expect(Self.verified(own, "dax_dedupe_file_range_compare"), "\(own.stdoutText)")

        // A function 6.12.118 did not change passes with the neighbour's source.
        let busy = try Self.patch(
            theirText, "(mapping, 0, LLONG_MAX);", "(mapping, 0, LLONG_MAX - 1);", scratch, "busy-118")
        let passing = try Self.build(["--source-diff", neighbour, busy], scratch)
        #expect(passing.termination == .exited(0), "\(passing.stdoutText)\(passing.stderrText)")
        #expect(Self.verified(passing, "dax_layout_busy_page"), "\(passing.stdoutText)")
        let recorded = try JSON.parse(passing.stdout)["sourceDiffs"]?.arrayValue ?? []
        #expect(recorded.first?["path"]?.stringValue == neighbour, "\(passing.stdoutText)")
        print("neighbour run-pre test: \(Int((Clock.now() - started).rounded())) s")
    }

    /// 6.12.118's copy of the file: from the slice's extracted sources, else
    /// from its source tarball.
    static func newerFile(into scratch: Scratch) throws -> String {
        let cache = ProcessInfo.processInfo.environment["SUTURE_CACHE"] ?? "/var/cache/suture"
        let extracted = Path.join(cache, "corpus-sources/118")
        if FileSystem.exists(Path.join(extracted, ".complete")) { return Path.join(extracted, Self.file) }
        let tarball = Path.join(cache, "kernels", Self.newer, "usr/src/linux-source-6.12.tar.xz")
        let into = scratch.file("118")
        try FileSystem.makeDirectories(into)
        _ = try Command.output([
            "tar", "-xJf", tarball, "-C", into, "--strip-components=1", "--wildcards", "--occurrence=1",
            "*/\(Self.file)",
        ])
        return Path.join(into, Self.file)
    }

    /// `diff -u` of two copies of the file, labelled as a -p1 diff of it.
    static func diff(_ from: String, _ to: String, to path: String) throws -> String {
        let run = try Command.run(["diff", "-u", "--label", "a/\(file)", "--label", "b/\(file)", from, to])
        try #require(run.termination == .exited(1), "no difference or diff failed: \(run.stderrText)")
        try FileSystem.write(path, run.stdoutText)
        return path
    }

    /// A diff of the file that replaces `old` (once, exactly) with `new`.
    static func patch(_ text: String, _ old: String, _ new: String, _ scratch: Scratch, _ name: String) throws
        -> String
    {
        try #require(text.components(separatedBy: old).count == 2, "\(file) no longer has one '\(old)'")
        let before = try scratch.write("\(name)/a", text)
        let after = try scratch.write("\(name)/b", text.replacingOccurrences(of: old, with: new))
        return try diff(before, after, to: scratch.file("\(name).diff"))
    }

    static func build(_ arguments: [String], _ scratch: Scratch) throws -> CommandResult {
        try SutureBinary.run(
            ["build", "--kernel", older, "--json", "-o", scratch.file("out")] + arguments, timeout: 900)
    }

    /// Whether the build's run-pre check verified `function` as replaced.
    static func verified(_ run: CommandResult, _ function: String) -> Bool {
        guard let json = try? JSON.parse(run.stdout), json["verification"]?["status"]?.stringValue == "verified"
        else { return false }
        return (json["verification"]?["functions"]?.arrayValue ?? []).contains {
            $0["function"]?.stringValue == function && $0["role"]?.stringValue == "replaced"
                && $0["status"]?.stringValue == "verified"
        }
    }

    /// The bytes of a byte run, without its `original:`/`shipped:` label.
    static func tokens(_ run: String) -> [String] {
        Array(run.split(separator: " ").dropFirst().map(String.init))
    }

    /// The bracketed byte of a byte run, e.g. `3b` of `48 89 [3b] 00`.
    static func bracketed(_ run: String) -> String? {
        guard let open = run.firstIndex(of: "["), let close = run.firstIndex(of: "]"), open < close else {
            return nil
        }
        return String(run[run.index(after: open)..<close])
    }
}
