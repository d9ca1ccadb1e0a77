// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TestSupport
import Testing

/// A blocking call that cannot be restarted transparently (a socket read
/// with SO_RCVTIMEO, epoll_wait) returns EINTR when the thread is stopped,
/// even by PTRACE_INTERRUPT. tinyproxy sets SO_RCVTIMEO on its sockets, and
/// answered nothing to a request whose upstream read an apply or a revert
/// broke off. The tracer restarts such calls: the program sees no failure.
@Suite(.serialized) struct InterruptedCallTests {
    @Test(arguments: ["stop-check", "per-thread", "hybrid"]) func blockedCallsSeeNoEINTR(_ model: String) throws {
        let fixture = try Fixture("timeouts")
        let patch = try fixture.patch(binary: "timeouts")
        let target = try TargetProgram([fixture.path("timeouts")], input: true)
        try #require(target.waitForLine { $0 == "tick 1" } != nil)
        Clock.sleep(seconds: 0.2)  // the reader and the poller are blocked by now

        let apply = try Suture.json(["process", "apply", "--pid", "\(target.pid)", patch, "--model", model])
        try #require(apply.result.termination.succeeded, "apply: \(apply.result.summary)")
        try #require(target.waitForLine(from: target.lines.count) { $0 == "tick 2" } != nil)
        try target.send("hello\n")
        #expect(target.waitForLine(timeout: 10) { $0 == "recv 6 hello" } != nil, "\(target.lines.suffix(8))")
        #expect(target.waitForLine(timeout: 10) { $0 == "epoll 1" } != nil, "\(target.lines.suffix(8))")

        let revert = try Suture.json(["process", "revert", "--pid", "\(target.pid)"])
        try #require(revert.result.termination.succeeded, "revert: \(revert.result.summary)")
        let back = target.waitForLine(from: target.lines.count) { $0 == "tick 1" }
        try #require(back != nil)
        try target.send("again\n")
        #expect(target.waitForLine(timeout: 10) { $0 == "recv 6 again" } != nil, "\(target.lines.suffix(8))")
        expectRunning(target, "after revert")
        let failures = target.lines.filter { $0.contains("failed") }
        #expect(failures.isEmpty, "calls broken off by the stops: \(failures)")
    }
}
