// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// The `suture` binary the tests drive (next to the test bundle, or
/// `SUTURE_BINARY`).
enum Suture {
    static var path: String { SutureBinary.path }

    static func checked() throws -> String { try SutureBinary.checked() }

    /// Runs suture to completion.
    static func run(_ arguments: [String], environment: [String: String?] = [:], timeout: Double = 300) throws
        -> CommandResult
    {
        try Command.run([try checked()] + arguments, environment: Command.environment(environment), timeout: timeout)
    }

    /// Runs suture with `--json` and parses its stdout.
    static func json(_ arguments: [String], timeout: Double = 300) throws -> (result: CommandResult, json: JSON) {
        let result = try run(arguments + ["--json"], timeout: timeout)
        let json = (try? JSON.parse(result.stdoutText)) ?? .null
        return (result, json)
    }
}

/// A fixture (C sources, Makefile, diffs) copied into a scratch folder.
final class Fixture: @unchecked Sendable {
    static let root = Path.join(Path.directory(of: #filePath), "Fixtures")

    let name: String
    let scratch: TemporaryDirectory
    var source: String { Path.join(scratch.path, "src") }

    init(_ name: String) throws {
        self.name = name
        scratch = try TemporaryDirectory(prefix: "suture-process-\(name)")
        _ = try Command.output(["cp", "-r", Path.join(Fixture.root, name), source])
    }

    func path(_ file: String) -> String { Path.join(source, file) }

    /// `suture process build DIFF --source SRC --build make --binary BINARY`.
    func build(diff: String = "patch.diff", binary: String, output: String? = nil) throws -> (
        result: CommandResult, json: JSON, patch: String
    ) {
        let patch = output ?? Path.join(scratch.path, "\(Path.base(of: diff)).patch.o")
        let (result, json) = try Suture.json([
            "process", "build", path(diff), "--source", source, "--build", "make",
            "--binary", binary, "-o", patch,
        ])
        return (result, json, patch)
    }

    /// Builds the patch and insists that it worked.
    func patch(diff: String = "patch.diff", binary: String) throws -> String {
        let (result, _, patch) = try build(diff: diff, binary: binary)
        guard result.termination.succeeded else {
            throw TestError(
                "suture process build failed (\(result.termination)): \(result.stdoutText)\n\(result.stderrText)")
        }
        return patch
    }
}

/// A C program running under test, its standard output collected line by line.
final class TargetProgram: @unchecked Sendable {
    let child: ChildProcess
    var pid: Int32 { child.pid }
    private var pending: [UInt8] = []
    private(set) var lines: [String] = []

    init(_ arguments: [String], input: Bool = false) throws {
        child = try ChildProcess(arguments, stdin: input ? .pipe : .null, stdout: .pipe, stderr: .inherit)
        let fd = child.standardOutput
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        child.signal(SIGKILL)
        child.wait()
    }

    /// Reads whatever output is there.
    func poll() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(child.standardOutput, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            pending += buffer[0..<n]
        }
        while let newline = pending.firstIndex(of: 10) {
            lines.append(String(decoding: pending[..<newline], as: UTF8.self))
            pending.removeSubrange(...newline)
        }
    }

    /// The first line from index `from` on that satisfies `predicate`, waiting up to `timeout`.
    func waitForLine(from: Int = 0, timeout: Double = 60, _ predicate: (String) -> Bool) -> (index: Int, line: String)?
    {
        let deadline = Clock.now() + timeout
        var next = from
        while true {
            poll()
            while next < lines.count {
                if predicate(lines[next]) { return (next, lines[next]) }
                next += 1
            }
            if Clock.now() > deadline || child.poll() != nil { return nil }
            Clock.sleep(seconds: 0.01)
        }
    }

    /// Waits until `count` lines after `index` exist; returns them.
    func lines(after index: Int, count: Int, timeout: Double = 60) -> [String] {
        let deadline = Clock.now() + timeout
        while true {
            poll()
            if lines.count > index + count || Clock.now() > deadline || child.poll() != nil {
                return Array(lines[min(index + 1, lines.count)..<min(index + 1 + count, lines.count)])
            }
            Clock.sleep(seconds: 0.01)
        }
    }

    func send(_ text: String) throws {
        try FileSystem.writeAll(fd: child.standardInput, Array(text.utf8), context: "target stdin")
    }

    /// Whether the process still runs.
    var isAlive: Bool { child.poll() == nil }

    /// Problems with the process's state: stopped (`T`), in a tracing stop
    /// (`t`), traced, or gone. Waits a little for a dead tracer's detach.
    func runStateProblems() -> [String] {
        let deadline = Clock.now() + 10
        while true {
            var problems: [String] = []
            if !isAlive { return ["process \(pid) ended (\(child.poll().map(\.description) ?? "?"))"] }
            let tids = ((try? FileSystem.list("/proc/\(pid)/task")) ?? []).compactMap { Int32($0) }
            for tid in tids {
                guard let text = FileSystem.readTextIfPresent("/proc/\(pid)/task/\(tid)/status") else { continue }
                for line in text.split(separator: "\n") {
                    if line.hasPrefix("State:"), let s = String(line.dropFirst(6)).trimmingWhitespace().first,
                        s == "T" || s == "t"
                    {
                        problems.append("thread \(tid) is stopped (\(line))")
                    }
                    if line.hasPrefix("TracerPid:"), String(line.dropFirst(10)).trimmingWhitespace() != "0" {
                        problems.append("thread \(tid) is traced (\(line))")
                    }
                }
            }
            if problems.isEmpty || Clock.now() > deadline { return problems }
            Clock.sleep(seconds: 0.05)
        }
    }

    /// Mappings of suture patch areas in the process.
    var sutureMappings: [String] {
        (FileSystem.readTextIfPresent("/proc/\(pid)/maps") ?? "").split(separator: "\n").map(String.init).filter {
            $0.contains("/memfd:suture:")
        }
    }
}

/// Expects the target to be running, untraced and not stopped.
func expectRunning(_ target: TargetProgram, _ when: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let problems = target.runStateProblems()
    #expect(problems.isEmpty, "\(when): \(problems.joined(separator: "; "))", sourceLocation: sourceLocation)
}

/// `suture process status --json` of a process.
func statusJSON(_ pid: Int32) throws -> JSON {
    let (result, json) = try Suture.json(["process", "status", "--pid", "\(pid)"])
    guard result.termination.succeeded else { throw TestError("status failed: \(result.stderrText)") }
    return json
}

extension CommandResult {
    var summary: String { "\(termination)\nstdout: \(stdoutText)\nstderr: \(stderrText)" }
}
