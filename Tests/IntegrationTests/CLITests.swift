// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TargetKernel
import TestSupport
import Testing
import VM

/// `suture vm` as users run it: exit statuses, streams, files, modules,
/// time limits and what is left behind.
@Suite(.serialized)
struct CLITests {
    @Test func printsTheKernelVersionAndKeepsStreamsApart() async throws {
        let release = try TestGuest.targetKernel()
        let r = try await SutureCLI.run([
            "vm", "--", #"cat /proc/version; printf 'x\000y\r\n'; printf 'to stderr' >&2; exit 5"#,
        ])
        #expect(r.termination == .exited(5))
        let expected = Array("Linux version \(release.release) ".utf8)
        #expect(r.stdout.starts(with: expected), "\(r.stdoutText)")
        #expect(r.stdout.suffix(5) == [120, 0, 121, 13, 10])
        #expect(r.stderr == Array("to stderr".utf8))
    }

    @Test func jsonHasTheStableShape() async throws {
        // Several words after -- are an argv, passed to the guest unchanged.
        let r = try await SutureCLI.run(["vm", "--json", "--", "sh", "-c", "printf out; printf \"it's\" >&2; exit 3"])
        #expect(r.termination == .exited(3))
        let json = try JSON.parse(r.stdout)
        #expect(
            json.objectValue?.map(\.0) == [
                "exitStatus", "stdout", "stderr", "kernelLog", "kernelProblem", "bootSeconds", "runSeconds",
            ])
        #expect(json["exitStatus"]?.intValue == 3)
        #expect(json["stdout"]?.stringValue == "out")
        #expect(json["stderr"]?.stringValue == "it's")
        #expect(json["kernelProblem"]?.isNull == true)
        #expect((json["bootSeconds"]?.doubleValue ?? 0) > 0)
        #expect((json["runSeconds"]?.doubleValue ?? -1) >= 0)
    }

    @Test func addsFilesDirectoriesAndModules() async throws {
        let directory = try TemporaryDirectory(prefix: "suture-add")
        let file = Path.join(directory.path, "tool.sh")
        try FileSystem.write(file, "#!/bin/sh\necho tool ran\n", mode: 0o751)
        try FileSystem.setMode(file, 0o751)
        let plain = Path.join(directory.path, "plain.txt")
        try FileSystem.write(plain, "plain text\n", mode: 0o604)
        try FileSystem.setMode(plain, 0o604)
        let tree = Path.join(directory.path, "tree")
        try FileSystem.makeDirectories(Path.join(tree, "a/b"))
        try FileSystem.write(Path.join(tree, "a/b/leaf"), "leaf\n", mode: 0o640)
        try FileSystem.setMode(Path.join(tree, "a/b/leaf"), 0o640)
        try FileSystem.setMode(Path.join(tree, "a"), 0o710)

        let script = """
            /tmp/t/tool.sh && stat -c '%a %n' /tmp/t/tool.sh \(plain) \(tree)/a \(tree)/a/b/leaf /tmp && \
            cat \(plain) \(tree)/a/b/leaf && modprobe binfmt_misc && modprobe xfs && \
            grep -E -o '^(binfmt_misc|xfs) ' /proc/modules | sort
            """
        let r = try await SutureCLI.run([
            "vm", "--add", "\(file):/tmp/t/tool.sh", "--add", plain, "--add", tree,
            "--modules", "binfmt_misc,xfs", "--", script,
        ])
        #expect(r.termination == .exited(0), "\(r.stderrText)")
        #expect(
            r.stdoutText == """
                tool ran
                751 /tmp/t/tool.sh
                604 \(plain)
                710 \(tree)/a
                640 \(tree)/a/b/leaf
                1777 /tmp
                plain text
                leaf
                binfmt_misc 
                xfs 

                """)
    }

    @Test func enforcesTheTimeoutAndLeavesNothingBehind() async throws {
        try await GuestLock.withLock {
            let started = Clock.now()
            let suture = try RunningSuture(["vm", "--timeout", "3", "--", "echo started; sleep 600"])
            let ended = suture.finish(timeout: 300)
            #expect(ended == .exited(124), "\(suture.stderr)")
            #expect(suture.stdout == "started\n")
            #expect(Clock.now() - started < 200)
            #expect(QemuProcesses.goneOf(suturePID: suture.process.pid, timeout: 5))
        }
    }

    @Test func killingSutureKillsTheGuest() async throws {
        try await GuestLock.withLock {
            let suture = try RunningSuture(["vm", "--", "echo up; sleep 600"])
            #expect(suture.waitForStdout(containing: "up", timeout: 300), "\(suture.stderr)")
            #expect(!QemuProcesses.of(suturePID: suture.process.pid).isEmpty)
            suture.process.signal(SIGKILL)
            #expect(suture.process.wait() == .signaled(SIGKILL))
            #expect(QemuProcesses.goneOf(suturePID: suture.process.pid, timeout: 10))
        }
    }

    @Test func interruptingSutureStopsTheGuest() async throws {
        try await GuestLock.withLock {
            let suture = try RunningSuture(["vm", "--", "echo up; sleep 600"])
            #expect(suture.waitForStdout(containing: "up", timeout: 300), "\(suture.stderr)")
            suture.process.signal(SIGINT)
            #expect(suture.finish(timeout: 30) == .signaled(SIGINT))
            #expect(QemuProcesses.goneOf(suturePID: suture.process.pid, timeout: 10))
        }
    }

    @Test func anOopsExitsWith126AndShowsTheKernelLog() async throws {
        let directory = try TemporaryDirectory(prefix: "suture-oops")
        let module = Path.join(directory.path, "suture_oops.ko")
        try FileSystem.write(module, try TestModules.bytes("suture_oops"))
        let r = try await SutureCLI.run(["vm", "--add", "\(module):/root/oops.ko", "--", "insmod /root/oops.ko"])
        #expect(r.termination == .exited(126))
        #expect(r.stderrText.contains("guest kernel oops during the command"))
        #expect(r.stderrText.contains("BUG: kernel NULL pointer dereference"))
    }

    @Test func aPanicIsReportedAsPanic() async throws {
        let r = try await SutureCLI.run(["vm", "--json", "--", "echo c > /proc/sysrq-trigger"])
        #expect(r.termination == .exited(126))
        let json = try JSON.parse(r.stdout)
        #expect(json["kernelProblem"]?.stringValue == "panic")
        #expect(json["exitStatus"]?.intValue == 126)
        #expect(json["kernelLog"]?.stringValue?.contains("Kernel panic - not syncing: sysrq triggered crash") == true)
    }

    @Test func printsAndCachesKallsyms() async throws {
        let cache = try TemporaryDirectory(prefix: "suture-cache")
        let environment = ["SUTURE_CACHE": cache.path]
        let first = try await SutureCLI.run(["vm", "--kallsyms"], environment: environment)
        #expect(first.termination == .exited(0), "\(first.stderrText)")
        let lines = first.stdoutText.split(separator: "\n")
        #expect(lines.count > 10_000)
        // Root sees real addresses, not zeros.
        let cmdline = try #require(lines.first { $0.hasSuffix(" t cmdline_proc_show") })
        #expect(UInt64(cmdline.prefix(16), radix: 16).map { $0 >= 0xffffffff80000000 } == true)
        #expect(lines.contains { $0.hasSuffix(" T start_kernel") })
        let release = try TestGuest.targetKernel().release
        #expect(try FileSystem.read(Kallsyms.cachePath(release: release, cacheRoot: cache.path)) == first.stdout)

        let second = try await SutureCLI.run(["vm", "--kallsyms", "--json"], environment: environment)
        let json = try JSON.parse(second.stdout)
        #expect(json["cached"]?.boolValue == true)
        #expect(json["symbols"]?.intValue == Int64(lines.count))
    }

    @Test func shellRunsInteractively() async throws {
        try await GuestLock.withLock {
            let input = try InputPipe()
            let suture = try RunningSuture(["vm", "--shell"], stdin: .descriptor(input.readEnd))
            input.closeReadEnd()
            #expect(suture.waitForStdout(containing: "suture-vm:", timeout: 300), "\(suture.stderr)")
            try input.write("echo shell-says-$((6*7))\nexit\n")
            #expect(suture.finish(timeout: 120) == .exited(0), "\(suture.stderr)")
            #expect(suture.stdout.contains("shell-says-42"))
            #expect(QemuProcesses.goneOf(suturePID: suture.process.pid, timeout: 5))
        }
    }

    @Test func usageAndInputErrors() async throws {
        let none = try await SutureCLI.run(["vm"])
        #expect(none.termination == .exited(64))
        let missing = try await SutureCLI.run(["vm", "--add", "/nonexistent/file", "--", "true"])
        #expect(missing.termination == .exited(125))
        #expect(missing.stderrText.contains("/nonexistent/file"))
        let module = try await SutureCLI.run(["vm", "--json", "--modules", "no_such_module", "--", "true"])
        #expect(module.termination == .exited(125))
        #expect(try JSON.parse(module.stdout)["error"]?["code"]?.stringValue == "vm-bad-input")
    }
}

/// A pipe whose write end the test keeps.
final class InputPipe {
    private(set) var readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw TestError("pipe: \(errno)") }
        readEnd = fds[0]
        writeEnd = fds[1]
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
    }

    func closeReadEnd() {
        if readEnd >= 0 {
            close(readEnd)
            readEnd = -1
        }
    }

    func write(_ text: String) throws {
        try FileSystem.writeAll(fd: writeEnd, Array(text.utf8), context: "pipe")
    }

    deinit {
        closeReadEnd()
        close(writeEnd)
    }
}
