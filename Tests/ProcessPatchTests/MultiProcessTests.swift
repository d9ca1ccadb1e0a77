// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Foundation
import Glibc
import Platform
import ProcessPatch
import TestSupport
import Testing

/// One patch, several processes: a library fix across every process that
/// maps the library, all of them or none; and a unit's processes found
/// through its cgroup.
@Suite(.serialized) struct MultiProcessTests {
    static let old = "describe v1 6"
    static let new = "describe v2 15"

    /// Builds the library patch and starts copies of the program (`hold`:
    /// one thread stays inside the patched `scale`).
    /// `hardened`: built with Debian's hardening flags and `-fno-plt`, so
    /// the library's calls to its own exported functions are GOT-relative
    /// and its GOT is read-only (full RELRO).
    func start(_ arguments: [[String]], hardened: Bool = false) throws -> (
        fixture: Fixture, patch: String, targets: [TargetProgram]
    ) {
        let fixture = try Fixture("sharedlib")
        let patch: String
        if !hardened {
            patch = try fixture.patch(binary: "libshared.so")
        } else {
            patch = Path.join(fixture.scratch.path, "hardened.patch.o")
            let flags = "-O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fcf-protection -fno-plt"
            let build = try Suture.run([
                "process", "build", fixture.path("patch.diff"), "--source", fixture.source,
                "--build", "make CFLAGS='\(flags)' LDFLAGS='-Wl,-z,relro,-z,now'", "--binary", "libshared.so",
                "-o", patch,
            ])
            try #require(build.termination.succeeded, "hardened build: \(build.summary)")
            let relocations = try Command.output(["readelf", "-rW", fixture.path("libshared.so")])
            try #require(!relocations.contains("R_X86_64_JUMP_SLOT"), "-fno-plt left PLT calls: \(relocations)")
        }
        var targets: [TargetProgram] = []
        for extra in arguments {
            let target = try TargetProgram([fixture.path("app")] + extra)
            try #require(target.waitForLine { $0 == MultiProcessTests.old } != nil, "\(target.lines.suffix(3))")
            if extra == ["hold"] { try #require(target.waitForLine { $0 == "holding" } != nil) }
            targets.append(target)
        }
        return (fixture, patch, targets)
    }

    /// Expects the target to print `line` from now on, and (through the
    /// program's copy of `calls`, which old and new code must both count)
    /// a counter that keeps rising.
    func expectRuns(_ target: TargetProgram, _ line: String, _ when: String) throws {
        target.poll()
        let seen = target.waitForLine(from: target.lines.count) { $0 == line }
        try #require(seen != nil, "\(when): no \"\(line)\" in process \(target.pid); last: \(target.lines.suffix(4))")
        let after = target.lines(after: seen!.index, count: 10)
        let describes = after.filter { $0.hasPrefix("describe ") }
        #expect(!describes.isEmpty && describes.allSatisfy { $0 == line }, "\(when): \(after)")
        let counts = after.filter { $0.hasPrefix("calls ") }.compactMap { Int($0.dropFirst(6)) }
        #expect(counts.count >= 3 && zip(counts, counts.dropFirst()).allSatisfy { $0 < $1 }, "\(when): \(after)")
    }

    func pids(_ targets: [TargetProgram]) -> [String] { targets.flatMap { ["--pid", "\($0.pid)"] } }

    /// Hardened (PIE, full RELRO, IBT, `-fno-plt`), three processes.
    @Test func libraryFixAcrossThreeProcesses() throws {
        let (fixture, patch, targets) = try start([[], [], []], hardened: true)
        defer { withExtendedLifetime((fixture, targets)) {} }
        let apply = try Suture.json(["process", "apply"] + pids(targets) + [patch, "--timeout", "30"])
        try #require(apply.result.termination.succeeded, "apply: \(apply.result.summary)")
        let processes = apply.json["processes"]?.arrayValue ?? []
        #expect(processes.map { $0["pid"]?.intValue } == targets.map { Int64($0.pid) }, "\(apply.json.serialized())")
        #expect(processes.allSatisfy { $0["state"]?.stringValue == "applied" }, "\(apply.json.serialized())")
        #expect(processes.allSatisfy { ($0["pausesMicroseconds"]?.arrayValue?.count ?? 0) >= 1 })
        #expect(apply.json["applied"]?.intValue == 3 && apply.json["error"] == nil)
        for t in targets {
            expectRunning(t, "after apply")
            try expectRuns(t, MultiProcessTests.new, "after apply")
        }

        let status = try Suture.json(["process", "status"] + pids(targets))
        try #require(status.result.termination.succeeded, "status: \(status.result.summary)")
        let statuses = status.json["processes"]?.arrayValue ?? []
        #expect(statuses.count == 3)
        for s in statuses {
            #expect(s["patches"]?[0]?["state"]?.stringValue == "applied", "\(s.serialized())")
            #expect(s["patches"]?[0]?["object"]?.stringValue?.hasSuffix("/libshared.so") == true)
        }
        let text = try Suture.run(["process", "status"] + pids(targets))
        #expect(text.stdoutText.components(separatedBy: "applied").count == 4, "\(text.stdoutText)")
        // --all lists every process with a patch: ours among them.
        let everyone = try Suture.json(["process", "status", "--all"])
        try #require(everyone.result.termination.succeeded, "status --all: \(everyone.result.summary)")
        let listed = Set((everyone.json["processes"]?.arrayValue ?? []).compactMap { $0["pid"]?.intValue })
        #expect(Set(targets.map { Int64($0.pid) }).isSubset(of: listed), "\(everyone.json.serialized())")

        // --all with the patch file: wherever it is applied, i.e. these three.
        let revert = try Suture.json(["process", "revert", "--all", patch, "--timeout", "30"])
        try #require(revert.result.termination.succeeded, "revert: \(revert.result.summary)")
        #expect(
            revert.json["processes"]?.arrayValue?.map { $0["pid"]?.intValue ?? 0 }.sorted()
                == targets.map { Int64($0.pid) }.sorted(), "\(revert.json.serialized())")
        #expect(
            revert.json["processes"]?.arrayValue?.allSatisfy { $0["state"]?.stringValue == "reverted" } == true,
            "\(revert.json.serialized())")
        for t in targets {
            expectRunning(t, "after revert")
            try expectRuns(t, MultiProcessTests.old, "after revert")
            #expect(t.sutureMappings.isEmpty, "left behind: \(t.sutureMappings)")
        }
    }

    /// A process that cannot take the patch refuses the set before anything
    /// is touched; one that fails while being patched (a thread stays inside
    /// `scale` past the timeout) rolls back the two patched before it.
    @Test func failureInTheThirdRollsBackTheFirstTwo() throws {
        let (fixture, patch, targets) = try start([[], [], ["hold"]])
        defer { withExtendedLifetime((fixture, targets)) {} }
        let stranger = try TargetProgram(["/bin/sleep", "600"])
        defer { withExtendedLifetime(stranger) {} }

        // Refused by the check: `sleep` does not map the library.
        let refused = try Suture.json(
            ["process", "apply"] + pids(Array(targets[0..<2])) + ["--pid", "\(stranger.pid)", patch])
        #expect(refused.result.termination == .exited(1), "\(refused.result.summary)")
        #expect(refused.json["error"]?["code"]?.stringValue == "process-build-id-mismatch", "\(refused.result.summary)")
        #expect(
            refused.json["processes"]?.arrayValue?.map { $0["state"]?.stringValue ?? "" }
                == ["not-attempted", "not-attempted", "failed"], "\(refused.json.serialized())")
        for t in targets[0..<2] { #expect(t.sutureMappings.isEmpty) }

        // Fails while applying: the third stays busy, the first two go back.
        let marks = targets.map {
            $0.poll()
            return $0.lines.count
        }
        let apply = try Suture.json(["process", "apply"] + pids(targets) + [patch, "--timeout", "1"])
        #expect(apply.result.termination == .exited(1), "\(apply.result.summary)")
        #expect(apply.json["error"]?["code"]?.stringValue == "process-busy", "\(apply.result.summary)")
        #expect(
            apply.json["processes"]?.arrayValue?.map { $0["state"]?.stringValue ?? "" }
                == ["rolled-back", "rolled-back", "failed"], "\(apply.json.serialized())")
        #expect(apply.json["error"]?["message"]?.stringValue?.contains("were reverted") == true)
        for (i, t) in targets.enumerated() {
            expectRunning(t, "after the rollback")
            #expect(t.sutureMappings.isEmpty, "process \(t.pid) keeps \(t.sutureMappings)")
            try expectRuns(t, MultiProcessTests.old, "after the rollback")
            // The first two did run the fix in between; the third never did.
            let between = t.lines[marks[i]...].contains(MultiProcessTests.new)
            #expect(between == (i < 2), "process \(i): new code seen \(between)")
        }
        let status = try Suture.json(["process", "status"] + pids(targets))
        #expect(
            status.json["processes"]?.arrayValue?.allSatisfy { $0["patches"]?.arrayValue?.isEmpty == true } == true,
            "\(status.json.serialized())")
    }

    /// `--unit`: a cgroup named like a service, made by hand in each systemd
    /// hierarchy mounted here (v1 `name=systemd`, v2), holding two copies of
    /// the program and one process that does not map the library.
    @Test func unitProcessesFromTheCgroup() throws {
        let mountinfo = try FileSystem.readText("/proc/self/mountinfo")
        let roots = ControlGroup.hierarchies(mountinfo: mountinfo)
        try #require(!roots.isEmpty, "no cgroup2 and no name=systemd hierarchy is mounted: \(mountinfo)")
        let unit = "suture-test-\(getpid())-\(Int.random(in: 0..<1_000_000)).service"
        let (fixture, patch, targets) = try start([[], []])
        defer { withExtendedLifetime((fixture, targets)) {} }
        let helper = try TargetProgram(["/bin/sleep", "600"])
        defer { withExtendedLifetime(helper) {} }
        let members = targets.map(\.pid) + [helper.pid]
        var made: [String] = []
        defer {
            for d in made {
                // Back to the hierarchy's root, then the folder can go.
                for pid in members {
                    try? FileSystem.write(Path.join(Path.directory(of: d), "cgroup.procs"), "\(pid)\n")
                }
                rmdir(d)
            }
        }
        for root in roots {
            let d = Path.join(root, unit)
            try FileSystem.makeDirectories(d)
            made.append(d)
            for pid in members { try FileSystem.write(Path.join(d, "cgroup.procs"), "\(pid)\n") }
        }

        let apply = try Suture.json(["process", "apply", "--unit", unit, patch, "--timeout", "30"])
        try #require(apply.result.termination.succeeded, "apply: \(apply.result.summary)")
        #expect(apply.json["unit"]?.stringValue == unit && apply.json["cgroup"]?.stringValue == "/\(unit)")
        let states = Dictionary(
            uniqueKeysWithValues: (apply.json["processes"]?.arrayValue ?? []).map {
                (Int32($0["pid"]?.intValue ?? 0), $0["state"]?.stringValue ?? "")
            })
        #expect(
            states == [targets[0].pid: "applied", targets[1].pid: "applied", helper.pid: "skipped"],
            "\(apply.json.serialized())")
        for t in targets { try expectRuns(t, MultiProcessTests.new, "after apply --unit") }

        let status = try Suture.json([
            "process", "status", "--unit", unit.replacingOccurrences(of: ".service", with: ""),
        ])
        try #require(status.result.termination.succeeded, "status: \(status.result.summary)")
        let counts = (status.json["processes"]?.arrayValue ?? []).map {
            (Int32($0["pid"]?.intValue ?? 0), $0["patches"]?.arrayValue?.count ?? -1)
        }
        #expect(counts.count == 3 && counts.allSatisfy { $0.1 == ($0.0 == helper.pid ? 0 : 1) }, "\(counts)")

        let revert = try Suture.json(["process", "revert", "--unit", unit])
        try #require(revert.result.termination.succeeded, "revert: \(revert.result.summary)")
        #expect(revert.json["reverted"]?.intValue == 2, "\(revert.json.serialized())")
        for t in targets {
            try expectRuns(t, MultiProcessTests.old, "after revert --unit")
            #expect(t.sutureMappings.isEmpty)
        }

        let missing = try Suture.json(["process", "status", "--unit", "suture-no-such-\(getpid()).service"])
        #expect(missing.result.termination == .exited(1), "\(missing.result.summary)")
        #expect(missing.json["error"]?["code"]?.stringValue == "process-not-found", "\(missing.result.summary)")
    }

    /// A distribution's library is stripped: its static functions are only
    /// named in its debug file (`/usr/lib/debug/.build-id/XX/REST.debug`).
    @Test func strippedLibraryUsesItsDebugFile() throws {
        let fixture = try Fixture("sharedlib")
        let patch = try fixture.patch(binary: "libshared.so")
        let library = fixture.path("libshared.so")
        let id = try #require(try ELFFile.open(library).buildID())
        let folder = "/usr/lib/debug/.build-id/\(hexString(Array(id[0..<1])))"
        let debug = Path.join(folder, hexString(Array(id[1...])) + ".debug")
        let kept = Path.join(fixture.scratch.path, "libshared.debug")
        _ = try Command.output(["objcopy", "--only-keep-debug", library, kept])
        _ = try Command.output(["strip", "--strip-unneeded", library])
        #expect(try ELFFile.open(library).symbolTableIndex == nil, "strip left the symbol table")
        let target = try TargetProgram([fixture.path("app")])
        try #require(target.waitForLine { $0 == MultiProcessTests.old } != nil)
        try #require(!FileSystem.exists(debug), "\(debug) exists already")

        let refused = try Suture.json(["process", "apply", "--pid", "\(target.pid)", patch])
        #expect(refused.result.termination == .exited(1), "\(refused.result.summary)")
        #expect(
            refused.json["error"]?["message"]?.stringValue?.contains("label") == true, "\(refused.result.summary)")
        #expect(target.sutureMappings.isEmpty)

        try FileSystem.makeDirectories(folder)
        try FileSystem.copyFile(kept, debug)
        defer {
            try? FileSystem.removeFile(debug)
            rmdir(folder)
        }
        // --all: every process that maps this build of the library, i.e. this one.
        let apply = try Suture.json(["process", "apply", "--all", patch])
        try #require(apply.result.termination.succeeded, "apply: \(apply.result.summary)")
        #expect(
            apply.json["processes"]?.arrayValue?.map { $0["pid"]?.intValue ?? 0 } == [Int64(target.pid)],
            "\(apply.json.serialized())")
        #expect((apply.json["others"]?.intValue ?? 0) > 0, "\(apply.json.serialized())")
        try expectRuns(target, MultiProcessTests.new, "after apply")
        let revert = try Suture.json(["process", "revert", "--pid", "\(target.pid)"])
        try #require(revert.result.termination.succeeded, "revert: \(revert.result.summary)")
        try expectRuns(target, MultiProcessTests.old, "after revert")
        #expect(target.sutureMappings.isEmpty)
        withExtendedLifetime((fixture, target)) {}
    }

    @Test func hierarchiesFromMountinfo() {
        let text = """
            30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
            31 23 0:27 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
            32 23 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
            33 23 0:29 / /mnt/my\\040cgroups rw - cgroup2 none rw
            """
        #expect(
            ControlGroup.hierarchies(mountinfo: text) == [
                "/sys/fs/cgroup", "/sys/fs/cgroup/systemd", "/mnt/my cgroups",
            ])
        #expect(ControlGroup.unitName("nginx") == "nginx.service")
        #expect(ControlGroup.unitName("user@1000.service") == "user@1000.service")
    }
}
