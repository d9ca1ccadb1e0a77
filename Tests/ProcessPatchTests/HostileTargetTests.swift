// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import Testing

/// A target process is hostile input: it can write any "patch area" into
/// its own memory. `suture process status` and `revert` run as root and
/// must refuse such state with an error, never trap (these used to die of
/// SIGILL), read hundreds of MiB, or print control characters raw.
@Suite(.serialized) struct HostileTargetTests {
    static let fixture: Fixture? = try? Fixture("hostile")

    static func start(_ mode: String) throws -> TargetProgram {
        let fixture = try #require(Self.fixture)
        _ = try Command.output(["make", "-s", "-C", fixture.source])
        let target = try TargetProgram([fixture.path("hostile"), mode])
        try #require(target.waitForLine { $0 == "ready" } != nil, "the hostile fixture did not start")
        return target
    }

    @Test(arguments: [
        ("negative-range", "incomplete description"),
        ("huge-description", "corrupt header"),
        ("table-overflow", "corrupt header"),
        ("huge-sequence", "sequence 1099511627776 is out of range"),
        ("foreign-function", "not in executable memory"),
    ])
    func hostileStateIsRefused(mode: String, message: String) throws {
        let target = try Self.start(mode)
        for command in ["status", "revert"] {
            let started = Clock.now()
            let run = try Suture.run(["process", command, "--pid", String(target.pid), "--json"], timeout: 60)
            #expect(run.termination == .exited(1), "\(mode) \(command): \(run.termination) \(run.stderrText)")
            let json = try JSON.parse(run.stdout)
            #expect(json["error"]?["code"]?.stringValue == "process-state", "\(run.stdoutText)")
            #expect(json["error"]?["message"]?.stringValue?.contains(message) == true, "\(run.stdoutText)")
            #expect(Clock.now() - started < 20, "\(mode) \(command) took too long")
        }
        expectRunning(target, mode)
    }

    /// Names from the target are escaped in text output: an escape sequence
    /// in a patch name must not reach the terminal, nor fake another line.
    @Test func controlCharactersAreEscaped() throws {
        let target = try Self.start("control-characters")
        let run = try Suture.run(["process", "status", "--pid", String(target.pid)], timeout: 60)
        #expect(run.termination == .exited(0), "\(run.stderrText)")
        let text = run.stdoutText
        #expect(!text.utf8.contains(0x1b) && !text.utf8.contains(0x07), "raw control characters in: \(text)")
        #expect(text.contains("\\x1b]0;owned\\x07\\x1b[2J\\n  #2 forged"), "\(text)")
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix("  #2") }, "a forged line: \(text)")
        let revert = try Suture.run(["process", "revert", "--pid", String(target.pid)], timeout: 60)
        #expect(!revert.stdout.contains(0x1b) && !revert.stderr.contains(0x1b), "raw escape in revert output")
    }
}
