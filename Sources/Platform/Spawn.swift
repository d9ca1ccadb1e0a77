// SPDX-License-Identifier: GPL-2.0-only
import CSutureShims
import Glibc
import SystemPackage

/// How a child process ended.
public enum Termination: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The shell's convention: the exit code, or 128 + the signal number.
    public var status: Int32 {
        switch self {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }

    public var succeeded: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let signal): return "signal \(signal)"
        }
    }

    init(waitStatus s: Int32) {
        if s & 0x7f == 0 {
            self = .exited((s >> 8) & 0xff)
        } else {
            self = .signaled(s & 0x7f)
        }
    }
}

/// Where one of a child's standard streams goes.
public enum Stdio: Sendable {
    case inherit
    case null
    /// A new pipe; the parent's end is on `ChildProcess`.
    case pipe
    /// An existing descriptor of the parent.
    case descriptor(Int32)
}

/// A child process started with exact control over descriptors, process
/// group and parent-death signal (`suture_spawn`).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let command: String
    /// Parent ends of pipes requested with `.pipe`, or -1.
    public private(set) var standardInput: Int32
    public private(set) var standardOutput: Int32
    public private(set) var standardError: Int32
    private var reaped: Termination?
    private var cleanupToken: Int?

    /// Starts `arguments[0]` (searched in PATH when it has no `/`).
    ///
    /// - Parameters:
    ///   - environment: the full environment, or nil to inherit ours.
    ///   - extraDescriptors: parent descriptors passed at the same numbers.
    ///   - deathSignal: sent to the child when this process dies (even by
    ///     SIGKILL). The fork happens on a keeper thread that lives as long as
    ///     the process, since the kernel ties this signal to the forking thread.
    ///   - newProcessGroup: start a process group, so `kill(group:)` reaches grandchildren.
    ///   - killOnCleanup: kill the child's group from the cleanup registry on signals.
    public init(
        _ arguments: [String],
        environment: [String: String]? = nil,
        workingDirectory: String? = nil,
        stdin: Stdio = .inherit, stdout: Stdio = .inherit, stderr: Stdio = .inherit,
        extraDescriptors: [Int32] = [],
        deathSignal: Int32 = SIGKILL,
        newProcessGroup: Bool = false,
        newSession: Bool = false,
        killOnCleanup: Bool = true
    ) throws(PlatformError) {
        precondition(!arguments.isEmpty, "ChildProcess needs an executable")
        command = arguments.joined(separator: " ")
        Progress.command(arguments, in: workingDirectory)
        var maps: [suture_fd_map] = []
        var parentEnds: [Int32] = [-1, -1, -1]
        var childEnds: [Int32] = []
        func setUp(_ stdio: Stdio, _ target: Int32) throws(PlatformError) {
            switch stdio {
            case .inherit:
                maps.append(suture_fd_map(from: target, to: target))
            case .null:
                let fd = try syscallResult("open /dev/null") { open("/dev/null", O_RDWR | O_CLOEXEC) }
                childEnds.append(fd)
                maps.append(suture_fd_map(from: fd, to: target))
            case .pipe:
                var ends: [Int32] = [-1, -1]
                _ = try syscallResult("pipe") { suture_pipe2(&ends, O_CLOEXEC) }
                let (parentEnd, childEnd) = target == 0 ? (ends[1], ends[0]) : (ends[0], ends[1])
                parentEnds[Int(target)] = parentEnd
                childEnds.append(childEnd)
                maps.append(suture_fd_map(from: childEnd, to: target))
            case .descriptor(let fd):
                maps.append(suture_fd_map(from: fd, to: target))
            }
        }
        defer { for fd in childEnds { close(fd) } }
        do {
            try setUp(stdin, 0)
            try setUp(stdout, 1)
            try setUp(stderr, 2)
        } catch {
            for fd in parentEnds where fd >= 0 { close(fd) }
            throw error
        }
        for fd in extraDescriptors { maps.append(suture_fd_map(from: fd, to: fd)) }

        var envStrings: [String]? = nil
        if let environment {
            envStrings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        }
        let spawned: pid_t = withCStringArray(arguments) { argv in
            withOptionalCStringArray(envStrings) { envp in
                maps.withUnsafeBufferPointer { fds in
                    withOptionalCString(workingDirectory) { cwd in
                        var options = suture_spawn_options(
                            path: argv[0], argv: argv, envp: envp, cwd: cwd,
                            fds: fds.baseAddress, nfds: Int32(fds.count),
                            death_signal: deathSignal,
                            new_process_group: newProcessGroup ? 1 : 0,
                            new_session: newSession ? 1 : 0)
                        // A death signal must not depend on the calling thread's life.
                        return deathSignal != 0 ? suture_spawn_from_keeper(&options) : suture_spawn(&options)
                    }
                }
            }
        }
        if spawned < 0 {
            let err = currentErrno()
            for fd in parentEnds where fd >= 0 { close(fd) }
            throw PlatformError(.spawn, errno: err, "start \(arguments[0])")
        }
        pid = spawned
        standardInput = parentEnds[0]
        standardOutput = parentEnds[1]
        standardError = parentEnds[2]
        if killOnCleanup {
            let group = newProcessGroup || newSession
            cleanupToken = Cleanup.register { [spawned] in
                Glibc.kill(group ? -spawned : spawned, SIGKILL)
            }
        }
    }

    deinit {
        for fd in [standardInput, standardOutput, standardError] where fd >= 0 { close(fd) }
        if let cleanupToken { Cleanup.unregister(cleanupToken) }
    }

    /// Closes the parent's end of the child's standard input.
    public func closeStandardInput() {
        if standardInput >= 0 {
            close(standardInput)
            standardInput = -1
        }
    }

    /// Sends a signal to the child, or to its process group.
    public func signal(_ sig: Int32, group: Bool = false) {
        if reaped == nil { Glibc.kill(group ? -pid : pid, sig) }
    }

    /// Waits for the child to end (retrying on EINTR).
    @discardableResult
    public func wait() -> Termination {
        if let reaped { return reaped }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if currentErrno() != .interrupted {
                reaped = .exited(255)
                return .exited(255)
            }
        }
        return finish(Termination(waitStatus: status))
    }

    /// The termination if the child has ended, without blocking.
    public func poll() -> Termination? {
        if let reaped { return reaped }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return finish(Termination(waitStatus: status)) }
        return nil
    }

    private func finish(_ t: Termination) -> Termination {
        reaped = t
        if let cleanupToken {
            Cleanup.unregister(cleanupToken)
            self.cleanupToken = nil
        }
        return t
    }
}

/// The result of `Command.run`.
public struct CommandResult: Sendable {
    public var termination: Termination
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var timedOut: Bool
    public var seconds: Double

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs external tools (make, gcc, patch, qemu …) and collects their output.
public enum Command {
    /// This process's environment with `changes` applied (nil removes a name).
    public static func environment(_ changes: [String: String?] = [:]) -> [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        for (name, value) in changes { result[name] = value }
        return result
    }

    public enum Stream: Sendable { case stdout, stderr }

    /// Runs a command to completion.
    ///
    /// - Parameters:
    ///   - input: bytes for standard input (closed after), or nil for /dev/null.
    ///   - capture: collect stdout and stderr; otherwise they are inherited.
    ///   - timeout: seconds after which the process group is killed.
    ///   - onOutput: called with each chunk as it arrives, when capturing.
    ///   - outputLimit: bytes of stdout past which the child is killed and
    ///     `run` throws, for tools fed hostile input (a decompressor).
    public static func run(
        _ arguments: [String],
        environment: [String: String]? = nil,
        workingDirectory: String? = nil,
        input: [UInt8]? = nil,
        capture: Bool = true,
        timeout: Double? = nil,
        onOutput: ((Stream, UnsafeRawBufferPointer) -> Void)? = nil,
        outputLimit: Int? = nil
    ) throws(PlatformError) -> CommandResult {
        let started = Clock.now()
        let child = try ChildProcess(
            arguments, environment: environment, workingDirectory: workingDirectory,
            stdin: input == nil ? .null : .pipe,
            stdout: capture ? .pipe : .inherit, stderr: capture ? .pipe : .inherit,
            newProcessGroup: timeout != nil || outputLimit != nil)
        var exceeded = false
        var out: [UInt8] = []
        var err: [UInt8] = []
        var pending = input ?? []
        var written = 0
        if input != nil && pending.isEmpty { child.closeStandardInput() }
        if input != nil {
            // Never block on a full stdin pipe while the child waits on us.
            _ = fcntl(child.standardInput, F_SETFL, fcntl(child.standardInput, F_GETFL) | O_NONBLOCK)
        }
        let deadline = timeout.map { started + $0 }
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        var open: [(Int32, Stream)] = []
        if child.standardOutput >= 0 { open.append((child.standardOutput, .stdout)) }
        if child.standardError >= 0 { open.append((child.standardError, .stderr)) }
        while !open.isEmpty || (child.standardInput >= 0) {
            var fds = open.map { pollfd(fd: $0.0, events: Int16(POLLIN), revents: 0) }
            if child.standardInput >= 0 {
                fds.append(pollfd(fd: child.standardInput, events: Int16(POLLOUT), revents: 0))
            }
            var wait: Int32 = -1
            if let deadline {
                let left = deadline - Clock.now()
                if left <= 0 {
                    timedOut = true
                    child.signal(SIGKILL, group: true)
                    break
                }
                wait = Int32(min(left * 1000 + 1, 1000))
            }
            let ready = Glibc.poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 {
                if currentErrno() == .interrupted { continue }
                break
            }
            if ready == 0 { continue }
            var stillOpen: [(Int32, Stream)] = []
            for (i, entry) in open.enumerated() {
                if fds[i].revents == 0 {
                    stillOpen.append(entry)
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { Glibc.read(entry.0, $0.baseAddress, $0.count) }
                if n > 0 {
                    buffer.withUnsafeBytes { raw in
                        let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                        onOutput?(entry.1, chunk)
                        if entry.1 == .stdout { out.append(contentsOf: chunk) } else { err.append(contentsOf: chunk) }
                    }
                    stillOpen.append(entry)
                } else if n < 0 && (currentErrno() == .interrupted || currentErrno() == .resourceTemporarilyUnavailable)
                {
                    stillOpen.append(entry)
                }
            }
            open = stillOpen
            if let outputLimit, out.count > outputLimit {
                exceeded = true
                child.signal(SIGKILL, group: true)
                break
            }
            if child.standardInput >= 0, let last = fds.last, last.revents != 0 {
                if last.revents & Int16(POLLOUT) != 0 && written < pending.count {
                    let n = pending.withUnsafeBytes { raw in
                        Glibc.write(child.standardInput, raw.baseAddress! + written, raw.count - written)
                    }
                    if n > 0 { written += n }
                }
                if written >= pending.count || last.revents & Int16(POLLERR | POLLHUP) != 0 {
                    child.closeStandardInput()
                    pending = []
                }
            }
        }
        if let deadline, !timedOut, !capture {
            while child.poll() == nil {
                if Clock.now() >= deadline {
                    timedOut = true
                    child.signal(SIGKILL, group: true)
                    break
                }
                Clock.sleep(seconds: 0.02)
            }
        }
        let termination = child.wait()
        if exceeded, let outputLimit {
            throw PlatformError(
                .invalidData, "\(arguments.first ?? "command") wrote more than \(outputLimit) bytes; stopped")
        }
        return CommandResult(
            termination: termination, stdout: out, stderr: err,
            timedOut: timedOut, seconds: Clock.now() - started)
    }

    /// Runs a command and returns its stdout, throwing with its stderr when
    /// it fails.
    public static func output(
        _ arguments: [String], environment: [String: String]? = nil,
        workingDirectory: String? = nil, input: [UInt8]? = nil
    ) throws(PlatformError) -> String {
        let result = try run(arguments, environment: environment, workingDirectory: workingDirectory, input: input)
        guard result.termination.succeeded else {
            throw PlatformError(
                .childFailed,
                "\(arguments.joined(separator: " ")) failed (\(result.termination)): \(tail(result.stderrText))")
        }
        return result.stdoutText
    }

    /// The last lines of a tool's output, for error messages.
    public static func tail(_ text: String, lines: Int = 20) -> String {
        let all = text.split(separator: "\n", omittingEmptySubsequences: false)
        return all.suffix(lines).joined(separator: "\n").trimmingWhitespace()
    }

    /// Finds an executable in PATH.
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = FileSystem.environment("PATH") ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 && !FileSystem.isDirectory(candidate) { return candidate }
        }
        return nil
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}

// MARK: - C string arrays

/// Calls `body` with a NULL-terminated `char *const *` for `strings`.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func withOptionalCStringArray<R>(_ strings: [String]?, _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> R) -> R
{
    guard let strings else { return body(nil) }
    return withCStringArray(strings) { body($0) }
}

func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
