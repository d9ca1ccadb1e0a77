// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// Unwinding through patched code: the C++ fixture's check() throws for
/// every third value and its callers catch. The patch's new check() throws
/// too ("new" instead of "old"), so each caught exception unwound through
/// the new code, entered through the entry jump or, during a per-thread
/// transition, the dispatcher. Without the patch's unwind tables registered
/// in the process, the first throw there would end the program
/// (std::terminate).
@Suite(.serialized) struct ExceptionTests {
    static let shared: Result<(Fixture, String), TestError> = {
        do {
            let fixture = try Fixture("exceptions")
            return .success((fixture, try fixture.patch(binary: "exceptions")))
        } catch {
            return .failure(TestError("\(error)"))
        }
    }()

    /// `count` "caught …" lines from `index` on, or fewer if the program ended.
    func caught(_ target: TargetProgram, from index: Int, count: Int) -> [String] {
        var found: [String] = []
        var next = index
        while found.count < count, let line = target.waitForLine(from: next, timeout: 10, { $0.hasPrefix("caught ") }) {
            found.append(line.line)
            next = line.index + 1
        }
        return found
    }

    @Test(arguments: ["stop-check", "per-thread", "hybrid"])
    func exceptionsUnwindThroughPatchedCode(_ model: String) throws {
        let (fixture, patch) = try ExceptionTests.shared.get()
        let target = try TargetProgram([fixture.path("exceptions")])
        try #require(target.waitForLine { $0 == "ready" } != nil)
        #expect(caught(target, from: 0, count: 3) == Array(repeating: "caught old 0", count: 3))

        let apply = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "30",
        ])
        try #require(apply.result.termination.succeeded, "apply: \(apply.result.summary)")
        #expect(apply.json["model"]?.stringValue == model)
        #expect(apply.json["state"]?.stringValue == "applied", "\(apply.json.serialized())")
        let applied = target.lines.count
        let first = target.waitForLine(from: applied, timeout: 10) { $0 == "caught new 0" }
        try #require(
            first != nil,
            "no exception from the new code was caught: \(target.lines.suffix(5)), alive: \(target.isAlive)")
        // Many more throws from the new code, in both threads, all caught.
        Clock.sleep(seconds: 0.5)
        let after = caught(target, from: first!.index, count: 5)
        #expect(after == Array(repeating: "caught new 0", count: 5), "\(after)")
        expectRunning(target, "after apply")

        let revert = try Suture.json([
            "process", "revert", "--pid", "\(target.pid)", "--model", model, "--timeout", "30",
        ])
        try #require(revert.result.termination.succeeded, "revert: \(revert.result.summary)")
        let reverted = target.lines.count
        let old = target.waitForLine(from: reverted, timeout: 10) { $0 == "caught old 0" }
        try #require(old != nil, "the old code did not come back: \(target.lines.suffix(5)), alive: \(target.isAlive)")
        let later = caught(target, from: old!.index, count: 5)
        #expect(later == Array(repeating: "caught old 0", count: 5), "\(later)")
        #expect(target.sutureMappings.isEmpty, "\(target.sutureMappings)")
        expectRunning(target, "after revert")
    }
}

extension ExceptionTests {
    /// During a per-thread or hybrid transition, held open by the holder
    /// asleep inside the old check(), the other threads enter the new
    /// check() through the dispatcher and its exceptions are caught; the
    /// transition ends when the holder leaves.
    @Test(arguments: ["per-thread", "hybrid"])
    func exceptionsUnwindDuringTransition(_ model: String) throws {
        let (fixture, patch) = try ExceptionTests.shared.get()
        let target = try TargetProgram([fixture.path("exceptions"), "hold"])
        try #require(target.waitForLine { $0 == "ready" } != nil)
        try #require(target.waitForLine { $0 == "caught old 0" } != nil)
        let apply = try BackgroundSuture([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "30",
        ])
        let start = target.lines.count
        let new = target.waitForLine(from: start, timeout: 10) { $0 == "caught new 0" || $0 == "hold done" }
        try #require(new != nil, "\(target.lines.suffix(5)), alive: \(target.isAlive)")
        #expect(
            new?.line == "caught new 0",
            "the new code ran only after the holder left: \(target.lines[start...].prefix(10))")
        let status = try statusJSON(target.pid)
        let holder = status["patches"]?[0]?["threads"]?.arrayValue?.first { $0["name"]?.stringValue == "holder" }
        #expect(status["patches"]?[0]?["state"]?.stringValue == "transition", "\(status.serialized())")
        #expect(holder?["code"]?.stringValue == "old", "\(status.serialized())")
        let (result, json) = apply.finish()
        try #require(result.succeeded, "apply: \(result) \(json.serialized())")
        #expect(json["state"]?.stringValue == "applied")
        #expect(target.waitForLine(from: start) { $0 == "hold done" } != nil)
        let after = caught(target, from: target.lines.count, count: 3)
        #expect(after == Array(repeating: "caught new 0", count: 3), "\(after)")

        let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"])
        #expect(revert.termination.succeeded, "\(revert.summary)")
        #expect(target.waitForLine(from: target.lines.count, timeout: 10) { $0 == "caught old 0" } != nil)
        #expect(target.sutureMappings.isEmpty, "\(target.sutureMappings)")
        expectRunning(target, "after revert")
    }
}

/// Suture killed while a thread runs its injected libgcc call (registering
/// the unwind tables during an apply, deregistering them during a revert):
/// the call returns to a stub that restores the thread by itself, so the
/// program runs on, still catching what it throws, and a later `revert`
/// cleans up.
@Suite(.serialized) struct ExceptionKillTests {
    @Test(arguments: ["apply", "revert"])
    func killedDuringUnwindCall(_ command: String) throws {
        let (fixture, patch) = try ExceptionTests.shared.get()
        let target = try TargetProgram([fixture.path("exceptions")])
        try #require(target.waitForLine { $0 == "ready" } != nil)
        try #require(target.waitForLine { $0 == "caught old 0" } != nil)
        let arguments: [String]
        if command == "apply" {
            arguments = ["process", "apply", "--pid", "\(target.pid)", patch, "--timeout", "30"]
        } else {
            let apply = try Suture.run(["process", "apply", "--pid", "\(target.pid)", patch, "--timeout", "30"])
            try #require(apply.termination.succeeded, "\(apply.summary)")
            try #require(target.waitForLine(from: target.lines.count) { $0 == "caught new 0" } != nil)
            arguments = ["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"]
        }
        try KillTests().kill(at: "unwind-call", arguments)
        expectRunning(target, "after the kill during \(command)")
        // Old code either way: the apply never switched; the revert had switched back.
        target.poll()
        let after = target.waitForLine(from: target.lines.count, timeout: 10) { $0.hasPrefix("caught ") }
        #expect(after?.line == "caught old 0", "after the kill during \(command): \(target.lines.suffix(3))")

        let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"])
        #expect(revert.termination.succeeded, "revert after the kill during \(command): \(revert.summary)")
        #expect(target.sutureMappings.isEmpty, "\(target.sutureMappings)")
        // Healthy afterwards: a full apply and revert still unwind.
        let again = try Suture.run(["process", "apply", "--pid", "\(target.pid)", patch, "--timeout", "30"])
        try #require(again.termination.succeeded, "\(again.summary)")
        #expect(
            target.waitForLine(from: target.lines.count, timeout: 10) { $0 == "caught new 0" } != nil,
            "\(target.lines.suffix(3)), alive: \(target.isAlive)")
        let last = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"])
        #expect(last.termination.succeeded, "\(last.summary)")
        #expect(target.waitForLine(from: target.lines.count, timeout: 10) { $0 == "caught old 0" } != nil)
        expectRunning(target, "at the end")
    }
}
