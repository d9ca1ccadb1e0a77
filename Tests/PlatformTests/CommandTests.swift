// SPDX-License-Identifier: GPL-2.0-only
import Platform
import Testing

@Suite struct CommandTests {
    @Test func capturesOutputAndStatus() throws {
        let r = try Command.run(["/bin/sh", "-c", "printf 'a\\nb'; printf err >&2; exit 3"])
        #expect(r.stdoutText == "a\nb")
        #expect(r.stderrText == "err")
        #expect(r.termination == .exited(3))
    }

    @Test func feedsInput() throws {
        let input = [UInt8](repeating: 65, count: 300_000)
        let r = try Command.run(["cat"], input: input)
        #expect(r.stdout == input)
    }

    @Test func enforcesTimeoutOnTheWholeGroup() throws {
        let r = try Command.run(["/bin/sh", "-c", "sleep 30 & sleep 30"], timeout: 0.5)
        #expect(r.timedOut)
        #expect(r.seconds < 5)
    }

    @Test func reportsAMissingExecutable() {
        #expect(throws: PlatformError.self) { try Command.run(["/nonexistent/tool"]) }
    }

    @Test func passesExtraDescriptors() throws {
        let fd = try Kernel.memfdCreate(name: "t", closeOnExec: true)
        defer { try? fd.close() }
        let r = try Command.run(["/bin/sh", "-c", "echo hi >&\(fd.rawValue)"], capture: true)
        #expect(r.termination.succeeded == false)  // not passed: closed in the child
    }
}
