// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// What one command in the guest did.
public struct GuestRun: Sendable {
    /// The command's shell-style status (128 + signal when killed), or
    /// nil when it never finished (the guest died or would not stop).
    public var commandStatus: Int32?
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// The guest kernel's messages since the previous command (all
    /// levels), or the console output when the guest died.
    public var kernelLog: String
    public var kernelProblem: KernelProblem?
    /// The command outlived its timeout and was killed.
    public var timedOut: Bool
    public var seconds: Double

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// The status `suture vm` exits with: 126 for a kernel problem, 124 for
    /// a timeout, else the command's status (125 if it has none).
    public var exitStatus: Int32 {
        if kernelProblem != nil { return 126 }
        if timedOut { return 124 }
        return commandStatus ?? 125
    }
}

/// A throwaway QEMU guest of a target kernel, driven through the agent on
/// its second serial port.
///
/// Boot once, then `run` commands, `upload` files and `shutdown` (also
/// done on deinit). QEMU dies with the process that started it, even on
/// SIGKILL (parent-death signal), and its initramfs exists only in a
/// memfd. Not thread-safe: one caller at a time.
///
/// ```swift
/// let vm = try VirtualMachine(VMConfiguration(kernel: try KernelResolver().resolve(nil)))
/// let r = try vm.run("cat /proc/version", timeout: 30)
/// try vm.upload(moduleBytes, to: "/root/patch.ko")
/// ```
public final class VirtualMachine {
    public let configuration: VMConfiguration
    public let accelerator: Accelerator
    /// The kernel file QEMU booted (the extracted vmlinux or the bzImage).
    public let bootKernel: BootKernel
    public let initramfsSize: Int
    /// Seconds from the start of `init` (initramfs included) to the agent's report.
    public private(set) var bootSeconds: Double = 0
    /// `uname -r` in the guest.
    public private(set) var guestRelease = ""
    /// Kernel messages of warning level or worse logged during boot.
    public private(set) var bootLog = ""
    /// A problem the kernel had while booting (before any command ran).
    public private(set) var bootProblem: KernelProblem?

    private let qemu: ChildProcess
    private var console: Int32
    private var agent: Int32
    private var errors: Int32
    private var decoder = FrameDecoder()
    private var outgoing: [UInt8] = []
    private var consoleSinceMark: [UInt8] = []
    private var qemuErrors: [UInt8] = []
    private var taint: UInt64 = 0
    /// The bulk transfer region, when the guest mapped it too.
    private var shared: SharedRegion?
    private var stopped = false
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    private static let consoleLimit = 4 << 20

    /// Builds the initramfs, starts QEMU and waits for the guest agent.
    public init(_ configuration: VMConfiguration) throws(VMError) {
        let started = Clock.now()
        self.configuration = configuration
        decoder = FrameDecoder(skippingLeadingNoise: configuration.secureBoot)
        let launch = try QemuLaunch.start(configuration, secondSerial: .agentSocket)
        qemu = launch.process
        console = launch.console
        agent = launch.agent
        errors = launch.errors
        accelerator = launch.accelerator
        bootKernel = launch.bootKernel
        initramfsSize = launch.initramfsSize
        if errors >= 0 { _ = fcntl(errors, F_SETFL, fcntl(errors, F_GETFL) | O_NONBLOCK) }
        let region = try? SharedRegion(fd: launch.transfer, size: SharedRegion.defaultSize)
        close(launch.transfer)

        let deadline = Clock.now() + configuration.bootTimeout
        let first: Event
        do { first = try next(until: deadline) } catch {
            shutdown()
            throw error
        }
        switch first {
        case .message(.ready(let release, let taint, let log, let sharedSize)):
            if let region, sharedSize == UInt64(region.size) { shared = region }
            guestRelease = release
            self.taint = taint
            bootLog = log
            bootProblem = KernelLog.problem(in: log + KernelLog.consoleText(consoleSinceMark), taintAfter: taint)
        case .message(let other):
            shutdown()
            throw VMError(.protocolError, "the guest agent began with \(other) instead of reporting ready")
        case .deadline:
            let log = KernelLog.consoleText(consoleSinceMark)
            shutdown()
            throw VMError(
                .bootTimeout,
                "the guest did not come up within \(Int(configuration.bootTimeout)) s (\(accelerator.rawValue)); console:\n\(Command.tail(log))"
            )
        case .stopped:
            let detail = failureDetail()
            shutdown()
            throw VMError(.qemuFailed, "the guest stopped while booting: \(detail)")
        }
        bootSeconds = Clock.now() - started
    }

    deinit { shutdown() }

    /// Whether the guest is still up (false after shutdown, a panic or a
    /// timeout the command did not survive).
    public var isRunning: Bool { !stopped }

    // MARK: - Commands

    /// Runs `command` with `/bin/sh -c` as root in the guest.
    ///
    /// - Parameters:
    ///   - timeout: seconds after which the command's process group is
    ///     killed; if the guest does not answer within 5 s more, the whole
    ///     machine is (and `isRunning` turns false).
    ///   - onOutput: called with each chunk of output as it arrives.
    public func run(
        _ command: String, timeout: Double? = nil,
        onOutput: ((Command.Stream, [UInt8]) -> Void)? = nil
    ) throws(VMError) -> GuestRun {
        guard !stopped else { throw VMError(.notRunning, "the guest is not running any more") }
        let started = Clock.now()
        consoleSinceMark = []
        send(.run(command: command))
        var result = GuestRun(
            commandStatus: nil, stdout: [], stderr: [], kernelLog: "",
            kernelProblem: nil, timedOut: false, seconds: 0)
        var deadline = timeout.map { started + $0 }
        while true {
            switch try next(until: deadline) {
            case .message(.stdout(let bytes)):
                result.stdout += bytes
                onOutput?(.stdout, bytes)
            case .message(.stderr(let bytes)):
                result.stderr += bytes
                onOutput?(.stderr, bytes)
            case .message(.sharedOutput(let toStdout, let length)):
                guard let shared, length <= UInt64(shared.size) else {
                    shutdown()
                    throw VMError(
                        .protocolError, "the agent reported \(length) bytes of output in a shared region it cannot have"
                    )
                }
                let bytes = shared.read(Int(length))
                send(.release)
                if toStdout { result.stdout += bytes } else { result.stderr += bytes }
                onOutput?(toStdout ? .stdout : .stderr, bytes)
            case .message(.exit(let status, let newTaint, let log)):
                result.commandStatus = status
                result.kernelLog = log
                result.kernelProblem = KernelLog.problem(
                    in: log + KernelLog.consoleText(consoleSinceMark), taintBefore: taint, taintAfter: newTaint)
                taint = newTaint
                result.seconds = Clock.now() - started
                return result
            case .message(let other):
                shutdown()
                throw VMError(.protocolError, "unexpected message from the guest agent during a command: \(other)")
            case .deadline:
                if !result.timedOut {
                    result.timedOut = true
                    send(.cancel)
                    deadline = Clock.now() + 5
                } else {
                    let log = KernelLog.consoleText(consoleSinceMark)
                    shutdown()
                    result.kernelLog = log
                    result.kernelProblem = KernelLog.problem(in: log)
                    result.seconds = Clock.now() - started
                    return result
                }
            case .stopped:
                let log = KernelLog.consoleText(consoleSinceMark)
                guard let problem = KernelLog.problem(in: log) else {
                    throw VMError(.qemuFailed, "the guest stopped during the command: \(failureDetail())")
                }
                result.kernelLog = log
                result.kernelProblem = problem
                result.seconds = Clock.now() - started
                return result
            }
        }
    }

    /// Writes `contents` to `path` in the running guest (parent
    /// directories are created; an existing file is replaced atomically).
    public func upload(_ contents: [UInt8], to path: String, mode: UInt32 = 0o644) throws(VMError) {
        guard path.hasPrefix("/") else { throw VMError(.usage, "upload: guest path \(path) must be absolute") }
        if let shared, contents.count <= shared.size {
            shared.write(contents)
            try request(
                .uploadShared(path: path, mode: mode, length: UInt64(contents.count)), what: "upload to \(path)",
                size: 0)
        } else {
            try request(
                .upload(path: path, mode: mode, contents: contents), what: "upload to \(path)", size: contents.count)
        }
    }

    /// A guest file's contents (`/proc` files too).
    public func download(_ path: String) throws(VMError) -> [UInt8] {
        switch try request(.download(path: path), what: "download of \(path)", size: 0) {
        case .file(let bytes):
            return bytes
        case .fileShared(let length):
            guard let shared, length <= UInt64(shared.size) else {
                throw VMError(.protocolError, "download of \(path): \(length) bytes reported in the shared region")
            }
            return shared.read(Int(length))
        default:
            throw VMError(.protocolError, "download of \(path): no contents came back")
        }
    }

    /// Sends a request and waits for its one answer: done, file, or failed.
    @discardableResult
    private func request(_ message: HostMessage, what: String, size: Int) throws(VMError) -> GuestMessage {
        guard !stopped else { throw VMError(.notRunning, "the guest is not running any more") }
        send(message)
        // Inline data crosses the serial line at some tens of KB/s.
        let deadline = Clock.now() + 120 + Double(size) / 10_000
        switch try next(until: deadline) {
        case .message(.failed(let message)):
            throw VMError(.guestFailed, "\(what): \(message)")
        case .message(let answer):
            switch answer {
            case .done, .file, .fileShared: return answer
            default:
                shutdown()
                throw VMError(.protocolError, "\(what): unexpected answer \(answer)")
            }
        case .deadline:
            shutdown()
            throw VMError(.guestFailed, "\(what) did not finish in time")
        case .stopped:
            throw VMError(.qemuFailed, "the guest stopped during the \(what): \(failureDetail())")
        }
    }

    /// Uploads a host file, keeping its mode unless one is given.
    public func upload(file hostPath: String, to guestPath: String, mode: UInt32? = nil) throws(VMError) {
        let bytes: [UInt8]
        let fileMode: UInt32
        do throws(PlatformError) {
            bytes = try FileSystem.read(hostPath)
            if let mode { fileMode = mode } else { fileMode = UInt32(try FileSystem.status(hostPath).st_mode & 0o7777) }
        } catch {
            throw VMError(.badInput, "read \(hostPath)", error)
        }
        try upload(bytes, to: guestPath, mode: fileMode)
    }

    /// Stops the guest at once (nothing in it needs an orderly shutdown).
    public func shutdown() {
        if !stopped {
            qemu.signal(SIGKILL)
            stopped = true
        }
        qemu.wait()
        for fd in [console, agent] where fd >= 0 { close(fd) }
        console = -1
        agent = -1
        errors = -1  // owned and closed by `qemu`
    }

    // MARK: - Channel

    private enum Event {
        case message(GuestMessage)
        case deadline
        /// QEMU has exited; its channels are closed.
        case stopped
    }

    private func send(_ message: HostMessage) {
        outgoing += message.frame.encoded()
    }

    /// Moves bytes in every direction until a message arrives, the
    /// deadline passes or QEMU exits.
    private func next(until deadline: Double?) throws(VMError) -> Event {
        while true {
            if let frame = try decoder.next() { return .message(try GuestMessage(frame)) }
            if stopped { return .stopped }
            var fds = [
                pollfd(fd: agent, events: Int16(POLLIN) | (outgoing.isEmpty ? 0 : Int16(POLLOUT)), revents: 0),
                pollfd(fd: console, events: Int16(POLLIN), revents: 0),
                pollfd(fd: errors, events: Int16(POLLIN), revents: 0),
            ]
            var wait: Int32 = -1
            if let deadline {
                let left = deadline - Clock.now()
                if left <= 0 { return .deadline }
                wait = Int32(min(left * 1000 + 1, 60_000))
            }
            let ready = Glibc.poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 {
                if currentErrno() == .interrupted { continue }
                throw VMError(.system, "poll the guest's channels", errno: currentErrno())
            }
            // A stream at its end is left out of later polls (fd -1).
            if fds[2].revents != 0 && !drain(errors, into: &qemuErrors) { errors = -1 }
            if fds[1].revents != 0 && !drain(console, into: &consoleSinceMark) {
                close(console)
                console = -1
            }
            // A chatty kernel must not grow memory without bound; the end
            // is what explains a failure.
            if consoleSinceMark.count > VirtualMachine.consoleLimit {
                consoleSinceMark.removeFirst(consoleSinceMark.count - VirtualMachine.consoleLimit / 2)
            }
            if fds[0].revents & Int16(POLLOUT) != 0 { flushOutgoing() }
            if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                // QEMU forwards the serial line a byte at a time. In the
                // middle of a frame, let bytes gather before reading
                // instead of waking once per byte.
                if decoder.pendingCount > 0 { Clock.sleep(seconds: 0.002) }
                var incoming: [UInt8] = []
                let open = drain(agent, into: &incoming)
                decoder.append(incoming)
                if !open { stoppedByItself() }
            }
        }
    }

    private func flushOutgoing() {
        // MSG_NOSIGNAL: a guest that is gone must be an error, not SIGPIPE.
        let n = outgoing.withUnsafeBytes { Glibc.send(agent, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n > 0 { outgoing.removeFirst(n) }
    }

    /// Reads what is available; false at end of file.
    private func drain(_ fd: Int32, into bytes: inout [UInt8]) -> Bool {
        guard fd >= 0 else { return true }
        while true {
            let n = readBuffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: readBuffer[0..<n])
                if n < readBuffer.count { return true }
                continue
            }
            if n == 0 { return false }
            let err = currentErrno()
            return err == .interrupted || err == .resourceTemporarilyUnavailable
        }
    }

    /// QEMU closed the agent channel: it exited (a panic with
    /// `panic=-1 -no-reboot`, a poweroff, a crash). Collect its last words.
    private func stoppedByItself() {
        stopped = true
        let deadline = Clock.now() + 5
        var consoleOpen = console >= 0
        while consoleOpen && Clock.now() < deadline {
            var fds = [pollfd(fd: console, events: Int16(POLLIN), revents: 0)]
            if Glibc.poll(&fds, 1, 200) > 0 { consoleOpen = drain(console, into: &consoleSinceMark) }
        }
        qemu.wait()
        _ = drain(errors, into: &qemuErrors)
    }

    private func failureDetail() -> String {
        let errorsText = String(decoding: qemuErrors, as: UTF8.self).trimmingWhitespace()
        let consoleText = Command.tail(KernelLog.consoleText(consoleSinceMark))
        var parts: [String] = []
        if !errorsText.isEmpty { parts.append("QEMU: \(Command.tail(errorsText))") }
        if !consoleText.isEmpty { parts.append("console:\n\(consoleText)") }
        return parts.isEmpty ? "no output" : parts.joined(separator: "\n")
    }
}
