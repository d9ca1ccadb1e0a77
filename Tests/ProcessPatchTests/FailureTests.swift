// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import Testing

/// Refusals: each leaves the process exactly as it was.
@Suite(.serialized) struct FailureTests {
    @Test func buildIDMismatchIsRefused() throws {
        let fixture = try Fixture("loop")
        let patch = try fixture.patch(binary: "loop")
        // Any other program: none of its objects has the patch's build-id.
        let target = try TargetProgram(["/bin/sleep", "600"])
        Clock.sleep(seconds: 0.1)
        let (result, json) = try Suture.json(["process", "apply", "--pid", "\(target.pid)", patch])
        #expect(result.termination == .exited(1), "\(result.summary)")
        #expect(json["error"]?["code"]?.stringValue == "process-build-id-mismatch", "\(result.summary)")
        #expect(json["error"]?["message"]?.stringValue?.contains("build-id") == true)
        expectRunning(target, "after the refusal")
        #expect(target.sutureMappings.isEmpty)
    }

    @Test func preCodeMismatchIsRefused() throws {
        // Binary A runs; the tree is then changed and rebuilt (same fixed
        // build-id), and the patch is built against that tree.
        let fixture = try Fixture("precode")
        _ = try Command.output(["make", "-s", "-C", fixture.source])
        let running = Path.join(fixture.scratch.path, "precode-a")
        try FileSystem.copyFile(fixture.path("precode"), running)
        try FileSystem.setMode(running, 0o755)
        _ = try Command.output(["patch", "-s", "-p1", "-d", fixture.source, "-i", fixture.path("rebuild.diff")])
        let patch = try fixture.patch(binary: "precode")
        let idA = try Command.output(["readelf", "-n", running]).split(separator: "\n").first {
            $0.contains("Build ID")
        }
        let idB = try Command.output(["readelf", "-n", fixture.path("precode")]).split(separator: "\n").first {
            $0.contains("Build ID")
        }
        try #require(
            idA != nil && idA == idB,
            "the fixture should keep its build-id: \(String(describing: idA)) vs \(String(describing: idB))")

        let target = try TargetProgram([running])
        try #require(target.waitForLine { $0 == "value 3" } != nil)
        let (result, json) = try Suture.json(["process", "apply", "--pid", "\(target.pid)", patch])
        #expect(result.termination == .exited(1), "\(result.summary)")
        #expect(json["error"]?["code"]?.stringValue == "process-pre-code-mismatch", "\(result.summary)")
        #expect(json["error"]?["message"]?.stringValue?.contains("compute") == true)
        expectRunning(target, "after the refusal")
        #expect(target.sutureMappings.isEmpty)
        let mark = target.lines.count
        #expect(target.lines(after: mark, count: 3).allSatisfy { $0 == "value 3" })
    }

    @Test func deadProcessIsRefused() throws {
        let fixture = try Fixture("loop")
        let patch = try fixture.patch(binary: "loop")
        let child = try ChildProcess(["/bin/true"])
        child.wait()
        for arguments in [
            ["process", "apply", "--pid", "\(child.pid)", patch], ["process", "status", "--pid", "\(child.pid)"],
            ["process", "revert", "--pid", "\(child.pid)"],
        ] {
            let (result, json) = try Suture.json(arguments)
            #expect(result.termination == .exited(1), "\(result.summary)")
            #expect(json["error"]?["code"]?.stringValue == "process-not-found", "\(result.summary)")
        }
    }

    @Test func changedInitializerIsRefusedAtBuildTime() throws {
        let fixture = try Fixture("initializer")
        let (result, json, patch) = try fixture.build(binary: "initializer")
        #expect(result.termination == .exited(1), "\(result.summary)")
        #expect(json["error"]?["code"]?.stringValue == "process-refused", "\(result.summary)")
        let message = json["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("limit") && message.contains("initializer"), "\(message)")
        let refusals = json["error"]?["refusals"]?.arrayValue ?? []
        #expect(refusals.count == 1, "\(result.summary)")
        #expect(refusals.first?["object"]?.stringValue?.hasSuffix(".c") == true, "\(result.summary)")
        #expect(refusals.first?["function"]?.stringValue == "limit", "\(result.summary)")
        #expect(refusals.first?["reason"]?.stringValue?.contains("initializer") == true, "\(result.summary)")
        #expect(!FileSystem.exists(patch), "no patch file may be written")
    }

    @Test func anotherUsersProcessIsRefused() throws {
        let fixture = try Fixture("loop")
        let patch = try fixture.patch(binary: "loop")
        try FileSystem.setMode(fixture.scratch.path, 0o755)
        try FileSystem.setMode(patch, 0o644)
        // A copy of suture that user nobody can run.
        let folder = try TemporaryDirectory(prefix: "suture-nobody")
        try FileSystem.setMode(folder.path, 0o755)
        let binary = Path.join(folder.path, "suture")
        try FileSystem.copyFile(try Suture.checked(), binary)
        try FileSystem.setMode(binary, 0o755)
        let target = try TargetProgram([fixture.path("loop"), "1"])
        try #require(target.waitForLine { $0 == "value 3 2" } != nil)
        for arguments in [
            ["process", "apply", "--pid", "\(target.pid)", patch], ["process", "revert", "--pid", "\(target.pid)"],
        ] {
            let result = try Command.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binary] + arguments + ["--json"])
            let json = try? JSON.parse(result.stdoutText)
            #expect(result.termination == .exited(1), "\(result.summary)")
            #expect(json?["error"]?["code"]?.stringValue == "process-permission", "\(result.summary)")
        }
        expectRunning(target, "after the refusal")
        #expect(target.sutureMappings.isEmpty)
    }

    @Test func notAPatchFileIsRefused() throws {
        let target = try TargetProgram(["/bin/sleep", "600"])
        let (result, json) = try Suture.json(["process", "apply", "--pid", "\(target.pid)", "/bin/true"])
        #expect(result.termination == .exited(1), "\(result.summary)")
        #expect(json["error"]?["code"]?.stringValue == "process-bad-patch", "\(result.summary)")
        expectRunning(target, "after the refusal")
    }
}
