// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport

/// Runs the `suture` binary as a user would, holding `GuestLock`.
enum SutureCLI {
    /// Runs to completion and captures stdout and stderr.
    static func run(
        _ arguments: [String], environment: [String: String?] = [:],
        timeout: Double = 600
    ) async throws -> CommandResult {
        let binary = try SutureBinary.checked()
        return try await GuestLock.withLock {
            try Command.run([binary] + arguments, environment: Command.environment(environment), timeout: timeout)
        }
    }
}

/// A `suture` process running in the background, with its output going to
/// files the test can watch; for tests that interrupt or kill it.
final class RunningSuture {
    let process: ChildProcess
    private let directory: TemporaryDirectory
    private let stdoutPath: String
    private let stderrPath: String

    init(_ arguments: [String], stdin: Stdio = .null) throws {
        directory = try TemporaryDirectory(prefix: "suture-cli")
        stdoutPath = Path.join(directory.path, "stdout")
        stderrPath = Path.join(directory.path, "stderr")
        let out = open(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let err = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            close(out)
            close(err)
        }
        // No death signal: the tests kill it themselves and check what it
        // leaves behind.
        process = try ChildProcess(
            [try SutureBinary.checked()] + arguments, stdin: stdin,
            stdout: .descriptor(out), stderr: .descriptor(err), deathSignal: 0)
    }

    var stdout: String { FileSystem.readTextIfPresent(stdoutPath) ?? "" }
    var stderr: String { FileSystem.readTextIfPresent(stderrPath) ?? "" }

    /// Waits until stdout contains `text`; false if the process ended or
    /// time ran out first.
    func waitForStdout(containing text: String, timeout: Double) -> Bool {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline {
            if stdout.contains(text) { return true }
            if process.poll() != nil { return stdout.contains(text) }
            Clock.sleep(seconds: 0.05)
        }
        return false
    }

    /// Waits for the process to end, killing it after `timeout`.
    func finish(timeout: Double) -> Termination? {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline {
            if let ended = process.poll() { return ended }
            Clock.sleep(seconds: 0.05)
        }
        process.signal(SIGKILL)
        process.wait()
        return nil
    }
}

/// QEMU processes of a given suture process, found by the `-name
/// suture-vm-PID` it gives them.
enum QemuProcesses {
    static func of(suturePID pid: pid_t) -> [pid_t] {
        let marker = "suture-vm-\(pid)"
        return ((try? FileSystem.list("/proc")) ?? []).compactMap { entry in
            guard let candidate = pid_t(entry),
                let cmdline = try? FileSystem.read("/proc/\(entry)/cmdline")
            else { return nil }
            let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.contains(marker) ? candidate : nil
        }
    }

    /// Waits up to `timeout` for them all to be gone; true if they are.
    static func goneOf(suturePID pid: pid_t, timeout: Double) -> Bool {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline {
            if of(suturePID: pid).isEmpty { return true }
            Clock.sleep(seconds: 0.1)
        }
        return of(suturePID: pid).isEmpty
    }
}
