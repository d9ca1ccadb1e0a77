// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// Suture killed with SIGKILL at named points of an apply or a revert
/// (`SUTURE_DEBUG_PAUSE` makes it wait there): the program must run on,
/// untraced, and show the old or the new behaviour, never a mix, never a
/// crash. A later `status` describes what was left, and `revert` cleans up.
/// With SIGTERM, Suture itself finishes a switch already made or undoes one
/// not yet made, and leaves nothing half done.
@Suite(.serialized) struct KillTests {
    /// One build of the loop fixture for every case.
    static let shared: Result<(Fixture, String), TestError> = {
        do {
            let fixture = try Fixture("loop")
            return .success((fixture, try fixture.patch(binary: "loop")))
        } catch {
            return .failure(TestError("\(error)"))
        }
    }()

    static let old = "value 3 2", new = "value 5 4"

    /// Starts suture, waits for it to reach `point`, sends `signal`, waits for it to end.
    func kill(at point: String, _ arguments: [String], signal: Int32 = SIGKILL) throws {
        let folder = try TemporaryDirectory(prefix: "suture-kill")
        let errPath = Path.join(folder.path, "stderr")
        let err = open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(err) }
        let suture = try ChildProcess(
            [try Suture.checked()] + arguments,
            environment: Command.environment(["SUTURE_DEBUG_PAUSE": point]),
            stdout: .null, stderr: .descriptor(err), deathSignal: SIGKILL)
        let deadline = Clock.now() + 120
        var reached = false
        while Clock.now() < deadline && suture.poll() == nil {
            if (FileSystem.readTextIfPresent(errPath) ?? "").contains("debug pause at \(point)") {
                reached = true
                break
            }
            Clock.sleep(seconds: 0.02)
        }
        suture.signal(signal)
        let ending = Clock.now() + 60
        while suture.poll() == nil && Clock.now() < ending { Clock.sleep(seconds: 0.02) }
        let ended = suture.poll()
        if ended == nil {
            suture.signal(SIGKILL)
            suture.wait()
        }
        try #require(reached, "suture never reached \(point): \(FileSystem.readTextIfPresent(errPath) ?? "")")
        #expect(ended != nil, "suture did not end after signal \(signal) at \(point)")
    }

    /// After the kill: running, untraced, and only `expected` from now on.
    func expectBehaviour(_ target: TargetProgram, _ expected: String, _ point: String) {
        expectRunning(target, "after the kill at \(point)")
        // Lines printed before the kill are in the pipe already: read them first.
        target.poll()
        let mark = target.lines.count
        let lines = target.lines(after: mark, count: 6)
        #expect(lines.count == 6, "the program stopped printing after the kill at \(point)")
        // The first line may have been printed before the kill.
        #expect(lines.dropFirst().allSatisfy { $0 == expected }, "after the kill at \(point): \(lines)")
    }

    /// Reverts until nothing is left, then expects the old behaviour.
    func cleanUp(_ target: TargetProgram, _ point: String) throws {
        for _ in 0..<3 {
            let status = try statusJSON(target.pid)
            if status["patches"]?.arrayValue?.isEmpty != false && status["incomplete"]?.arrayValue?.isEmpty != false {
                break
            }
            let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "60"])
            #expect(revert.termination.succeeded, "revert after the kill at \(point): \(revert.summary)")
        }
        #expect(target.sutureMappings.isEmpty, "after cleaning up the kill at \(point): \(target.sutureMappings)")
        let back = target.waitForLine(from: target.lines.count) { $0 == KillTests.old }
        #expect(back != nil, "old behaviour after cleaning up the kill at \(point)")
        expectRunning(target, "after cleaning up the kill at \(point)")
    }

    /// The loop fixture running with the patch applied.
    func patchedTarget() throws -> TargetProgram {
        let (fixture, patch) = try KillTests.shared.get()
        let target = try TargetProgram([fixture.path("loop"), "2"])
        try #require(target.waitForLine { $0 == KillTests.old } != nil)
        let apply = try Suture.run(["process", "apply", "--pid", "\(target.pid)", patch, "--timeout", "60"])
        try #require(apply.termination.succeeded, "\(apply.summary)")
        try #require(target.waitForLine(from: target.lines.count) { $0 == KillTests.new } != nil)
        return target
    }

    @Test(arguments: ["attached", "inject-registers", "injecting", "loaded", "commit-started", "committed", "direct"])
    func killedDuringApply(_ point: String) throws {
        let (fixture, patch) = try KillTests.shared.get()
        let target = try TargetProgram([fixture.path("loop"), "2"])
        try #require(target.waitForLine { $0 == KillTests.old } != nil)
        try kill(at: point, ["process", "apply", "--pid", "\(target.pid)", patch, "--timeout", "60"])

        let switched = point == "committed" || point == "direct"
        expectBehaviour(target, switched ? KillTests.new : KillTests.old, point)
        let status = try statusJSON(target.pid)
        let patches = status["patches"]?.arrayValue ?? []
        let incomplete = status["incomplete"]?.arrayValue ?? []
        switch point {
        case "attached", "inject-registers":
            #expect(patches.isEmpty && incomplete.isEmpty, "\(point): \(status.serialized())")
        case "injecting":
            // The injected code finished on its own: an area without a header.
            #expect(patches.isEmpty && incomplete.count == 1, "\(point): \(status.serialized())")
        default:
            #expect(patches.count == 1, "\(point): \(status.serialized())")
            #expect(
                patches.first?["state"]?.stringValue == (switched ? "applied" : "inactive"),
                "\(point): \(status.serialized())")
        }
        try cleanUp(target, point)
    }

    /// Per-thread: killed (or terminated) once the transition began, with
    /// every thread marked old and none moved yet: the program runs the old
    /// code through the dispatchers, a new suture reports the transition,
    /// and `revert` reverses it.
    @Test(arguments: [
        ("transition-started", SIGKILL), ("transition-running", SIGKILL), ("transition-running", SIGTERM),
    ])
    func stoppedDuringTransition(_ point: String, _ signal: Int32) throws {
        let (fixture, patch) = try KillTests.shared.get()
        let target = try TargetProgram([fixture.path("loop"), "2"])
        try #require(target.waitForLine { $0 == KillTests.old } != nil)
        try kill(
            at: point,
            ["process", "apply", "--pid", "\(target.pid)", patch, "--model", "per-thread", "--timeout", "60"],
            signal: signal)
        expectBehaviour(target, KillTests.old, point)
        let status = try statusJSON(target.pid)
        #expect(status["patches"]?[0]?["state"]?.stringValue == "transition", "\(point): \(status.serialized())")
        let threads = status["patches"]?[0]?["threads"]?.arrayValue ?? []
        #expect(
            threads.count == 3 && threads.allSatisfy { $0["code"]?.stringValue == "old" },
            "\(point): \(status.serialized())")
        try cleanUp(target, point)
    }

    @Test(arguments: ["revert-started", "reverted"])
    func killedDuringRevert(_ point: String) throws {
        let target = try patchedTarget()
        try kill(at: point, ["process", "revert", "--pid", "\(target.pid)", "--timeout", "60"])

        let reverted = point == "reverted"
        expectBehaviour(target, reverted ? KillTests.old : KillTests.new, point)
        let status = try statusJSON(target.pid)
        #expect(
            status["patches"]?[0]?["state"]?.stringValue == (reverted ? "inactive" : "applied"),
            "\(point): \(status.serialized())")
        try cleanUp(target, point)
    }

    @Test(arguments: ["loaded", "commit-started", "committed"])
    func terminatedDuringApply(_ point: String) throws {
        let (fixture, patch) = try KillTests.shared.get()
        let target = try TargetProgram([fixture.path("loop"), "2"])
        try #require(target.waitForLine { $0 == KillTests.old } != nil)
        try kill(at: point, ["process", "apply", "--pid", "\(target.pid)", patch, "--timeout", "60"], signal: SIGTERM)

        let switched = point == "committed"
        expectBehaviour(target, switched ? KillTests.new : KillTests.old, point)
        let status = try statusJSON(target.pid)
        if switched {
            #expect(status["patches"]?[0]?["state"]?.stringValue == "applied", "\(status.serialized())")
            #expect(
                status["patches"]?[0]?["phase"]?.stringValue == "applied",
                "the switch was finished: \(status.serialized())")
        } else {
            #expect(
                status["patches"]?.arrayValue?.isEmpty == true && target.sutureMappings.isEmpty,
                "undone: \(status.serialized())")
        }
        try cleanUp(target, point)
    }

    @Test(arguments: ["revert-started", "reverted"])
    func terminatedDuringRevert(_ point: String) throws {
        let target = try patchedTarget()
        try kill(at: point, ["process", "revert", "--pid", "\(target.pid)", "--timeout", "60"], signal: SIGTERM)

        let reverted = point == "reverted"
        expectBehaviour(target, reverted ? KillTests.old : KillTests.new, point)
        let status = try statusJSON(target.pid)
        if reverted {
            #expect(
                status["patches"]?.arrayValue?.isEmpty == true && target.sutureMappings.isEmpty,
                "finished: \(status.serialized())")
        } else {
            #expect(status["patches"]?[0]?["state"]?.stringValue == "applied", "undone: \(status.serialized())")
        }
        try cleanUp(target, point)
    }
}
