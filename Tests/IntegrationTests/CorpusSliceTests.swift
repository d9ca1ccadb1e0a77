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
}
