// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// The per-thread and hybrid models on the sleeper fixture, whose napper
/// thread spends 4 s at a time inside the patched nap(): while it sleeps
/// there, a transition holds it on the old code and moves every other
/// thread; `status` shows each thread's side; the transition ends when the
/// napper leaves nap(). Stop-and-check cannot switch at all meanwhile.
@Suite(.serialized) struct TransitionTests {
    static let shared: Result<(Fixture, String), TestError> = {
        do {
            let fixture = try Fixture("sleeper")
            return .success((fixture, try fixture.patch(binary: "sleeper")))
        } catch {
            return .failure(TestError("\(error)"))
        }
    }()

    /// A sleeper whose napper has just gone to sleep inside nap().
    func napping(_ mode: String) throws -> TargetProgram {
        let (fixture, _) = try TransitionTests.shared.get()
        let target = try TargetProgram([fixture.path("sleeper"), mode])
        try #require(target.waitForLine { $0 == "tick 1" } != nil)
        try #require(target.waitForLine(from: target.lines.count) { $0 == "nap enter" } != nil)
        Clock.sleep(seconds: 0.1)
        return target
    }

    /// Polls `status --json` until the patch is in a transition with the
    /// napper on old code held by nap and every other thread on new code.
    func waitForHeldNapper(_ pid: Int32, timeout: Double = 3) throws -> JSON? {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline {
            let status = try statusJSON(pid)
            let patch = status["patches"]?[0]
            let threads = patch?["threads"]?.arrayValue ?? []
            let napper = threads.first { $0["name"]?.stringValue == "napper" }
            let others = threads.filter { $0["name"]?.stringValue != "napper" }
            if patch?["state"]?.stringValue == "transition",
                napper?["code"]?.stringValue == "old", napper?["heldBy"]?.stringValue == "nap",
                !others.isEmpty, others.allSatisfy({ $0["code"]?.stringValue == "new" })
            {
                return status
            }
            Clock.sleep(seconds: 0.05)
        }
        return nil
    }

    @Test(arguments: ["per-thread", "hybrid"])
    func longSleeperIsHeldWhileOthersMove(_ model: String) throws {
        let (_, patch) = try TransitionTests.shared.get()
        let target = try napping("long")
        let napIndex = target.lines.count - 1
        let apply = try BackgroundSuture([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "30",
        ])

        let status = try waitForHeldNapper(target.pid)
        try #require(
            status != nil, "no transition with the napper held: \((try? statusJSON(target.pid))?.serialized() ?? "")")
        let text = try Suture.run(["process", "status", "--pid", "\(target.pid)"])
        #expect(
            text.stdoutText.contains("napper") && text.stdoutText.contains("old, held by nap"), "\(text.stdoutText)")
        // The main thread runs the new code while the napper still sleeps in the old one.
        let tick2 = target.waitForLine(from: napIndex) { $0 == "tick 2" }
        try #require(tick2 != nil, "the main thread never ran the new code: \(target.lines.suffix(5))")
        let napEnded = target.lines[napIndex...].firstIndex { $0.hasPrefix("nap ") && $0 != "nap enter" }
        #expect(
            napEnded == nil || napEnded! > tick2!.index,
            "tick 2 came only after the napper left: \(target.lines[napIndex...].prefix(40))")

        let (result, json) = apply.finish()
        try #require(result.succeeded, "apply: \(result) \(json.serialized())")
        #expect(json["state"]?.stringValue == "applied")
        // The napper finished its old nap (1), then napped in the new one (2).
        let old = target.waitForLine(from: napIndex) { $0.hasPrefix("nap ") && $0 != "nap enter" }
        #expect(old?.line == "nap 1", "the napper's current nap stays old: \(old?.line ?? "none")")
        #expect(target.waitForLine(from: (old?.index ?? napIndex) + 1, timeout: 15) { $0 == "nap 2" } != nil)
        let after = try statusJSON(target.pid)
        #expect(after["patches"]?[0]?["state"]?.stringValue == "applied", "\(after.serialized())")
        #expect(after["patches"]?[0]?["threads"]?.arrayValue?.isEmpty == true)

        // Revert under the same model: the napper sleeps in the new nap now.
        let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"])
        #expect(revert.termination.succeeded, "\(revert.summary)")
        #expect(target.waitForLine(from: target.lines.count) { $0 == "tick 1" } != nil)
        #expect(target.sutureMappings.isEmpty, "\(target.sutureMappings)")
        expectRunning(target, "after the revert")
    }

    @Test func longSleeperStopsStopAndCheck() throws {
        let (_, patch) = try TransitionTests.shared.get()
        let target = try napping("long")
        let (result, json) = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", "stop-check", "--timeout", "1.5",
        ])
        #expect(result.termination == .exited(1), "\(result.summary)")
        #expect(json["error"]?["code"]?.stringValue == "process-busy")
        #expect(target.sutureMappings.isEmpty)
        expectRunning(target, "after the timeout")
    }

    @Test(arguments: ["per-thread", "hybrid"])
    func newThreadsStartOnNewCode(_ model: String) throws {
        let (_, patch) = try TransitionTests.shared.get()
        let target = try napping("spawn")
        #expect(target.waitForLine { $0 == "spawned 1" } != nil)
        let apply = try BackgroundSuture([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "30",
        ])
        try #require(try waitForHeldNapper(target.pid) != nil, "no transition with the napper held")
        Clock.sleep(seconds: 0.2)
        target.poll()
        let mark = target.lines.count
        Clock.sleep(seconds: 1)
        let status = try statusJSON(target.pid)
        target.poll()
        let spawned = target.lines[mark...].filter { $0.hasPrefix("spawned") }
        #expect(
            status["patches"]?[0]?["state"]?.stringValue == "transition", "still in transition: \(status.serialized())")
        #expect(
            spawned.count >= 5 && spawned.allSatisfy { $0 == "spawned 2" },
            "threads created during the transition: \(spawned)")
        let (result, json) = apply.finish()
        #expect(result.succeeded, "apply: \(result) \(json.serialized())")
        let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"])
        #expect(revert.termination.succeeded, "\(revert.summary)")
        expectRunning(target, "after the revert")
    }

    /// Suture dies during a transition; a second Suture process reports it
    /// and reverses it.
    @Test(arguments: ["per-thread", "hybrid"])
    func revertDuringTransition(_ model: String) throws {
        let (_, patch) = try TransitionTests.shared.get()
        let target = try napping("long")
        let apply = try BackgroundSuture([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "30",
        ])
        try #require(try waitForHeldNapper(target.pid) != nil, "no transition with the napper held")
        apply.child.signal(SIGKILL)
        _ = apply.child.wait()
        expectRunning(target, "after the kill")
        let status = try waitForHeldNapper(target.pid, timeout: 1)
        #expect(
            status != nil, "a new suture reports the transition: \((try? statusJSON(target.pid))?.serialized() ?? "")")
        #expect(target.waitForLine(from: target.lines.count) { $0 == "tick 2" } != nil)

        let revert = try Suture.json(["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"])
        try #require(revert.result.termination.succeeded, "\(revert.result.summary)")
        #expect(target.sutureMappings.isEmpty, "\(target.sutureMappings)")
        let back = target.waitForLine(from: target.lines.count) { $0 == "tick 1" }
        #expect(back != nil)
        let later = target.lines(after: back?.index ?? 0, count: 6).filter { $0.hasPrefix("tick") }
        #expect(later.allSatisfy { $0 == "tick 1" }, "\(later)")
        #expect(try statusJSON(target.pid)["patches"]?.arrayValue?.isEmpty == true)
        expectRunning(target, "after the revert")
    }

    /// Suture dies during a transition; `apply` again finishes it.
    @Test func applyAgainFinishesTransition() throws {
        let (_, patch) = try TransitionTests.shared.get()
        let target = try napping("long")
        let apply = try BackgroundSuture([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", "per-thread", "--timeout", "30",
        ])
        try #require(try waitForHeldNapper(target.pid) != nil, "no transition with the napper held")
        apply.child.signal(SIGKILL)
        _ = apply.child.wait()
        let again = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", "per-thread", "--timeout", "30",
        ])
        try #require(again.result.termination.succeeded, "\(again.result.summary)")
        let status = try statusJSON(target.pid)
        #expect(
            status["patches"]?.arrayValue?.count == 1 && status["patches"]?[0]?["state"]?.stringValue == "applied",
            "\(status.serialized())")
        #expect(target.waitForLine(from: target.lines.count, timeout: 15) { $0 == "nap 2" } != nil)
        let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "30"])
        #expect(revert.termination.succeeded, "\(revert.summary)")
        expectRunning(target, "after the revert")
    }
}

/// `revert --model` other than the one the patch was applied with: a
/// stop-and-check patch reverted per thread (the thread-ID offset is found
/// only then), and a per-thread patch reverted with stop-and-check.
@Suite(.serialized) struct ModelChangeTests {
    @Test(arguments: [("stop-check", "per-thread"), ("per-thread", "stop-check"), ("hybrid", "per-thread")])
    func revertWithAnotherModel(_ applied: String, _ reverted: String) throws {
        let fixture = try Fixture("loop")
        let patch = try fixture.patch(binary: "loop")
        let target = try TargetProgram([fixture.path("loop"), "3"])
        try #require(target.waitForLine { $0 == "value 3 2" } != nil)
        let apply = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", applied, "--timeout", "60",
        ])
        try #require(apply.result.termination.succeeded, "\(apply.result.summary)")
        #expect(target.waitForLine(from: target.lines.count) { $0 == "value 5 4" } != nil)
        #expect(try statusJSON(target.pid)["patches"]?[0]?["model"]?.stringValue == applied)
        let revert = try Suture.json([
            "process", "revert", "--pid", "\(target.pid)", "--model", reverted, "--timeout", "60",
        ])
        try #require(revert.result.termination.succeeded, "\(revert.result.summary)")
        let back = target.waitForLine(from: target.lines.count) { $0 == "value 3 2" }
        #expect(back != nil)
        let later = target.lines(after: back?.index ?? 0, count: 5).filter { $0.hasPrefix("value") }
        #expect(later.allSatisfy { $0 == "value 3 2" }, "\(later)")
        #expect(target.sutureMappings.isEmpty, "\(target.sutureMappings)")
        expectRunning(target, "after the revert")
    }
}

/// `suture … --json` running in the background, its output in a file.
final class BackgroundSuture {
    let child: ChildProcess
    let folder: TemporaryDirectory
    var output: String { Path.join(folder.path, "stdout") }

    init(_ arguments: [String]) throws {
        folder = try TemporaryDirectory(prefix: "suture-background")
        let out = open(Path.join(folder.path, "stdout"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(out) }
        child = try ChildProcess(
            [try Suture.checked()] + arguments + ["--json"], stdout: .descriptor(out), stderr: .null,
            deathSignal: SIGKILL)
    }

    deinit {
        if child.poll() == nil {
            child.signal(SIGKILL)
            _ = child.wait()
        }
    }

    /// Waits for it; its exit and JSON output.
    func finish() -> (Termination, JSON) {
        let termination = child.wait()
        let json = (try? JSON.parse(FileSystem.readTextIfPresent(output) ?? "")) ?? .null
        return (termination, json)
    }
}
