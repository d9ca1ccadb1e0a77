// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The guest side of the host–guest channel: started by the guest's
/// /init as `suture vm-agent /dev/ttyS1`, it runs commands as root and
/// streams their output back in frames, writes uploaded files, and reports
/// the kernel log and taint after every command.
public final class GuestAgent {
    private let channel: Int32
    private let kmsg: Int32
    private let shared: SharedRegion?
    private var decoder = FrameDecoder()
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    /// The running command's process group, for `cancel`.
    private var runningGroup: pid_t = 0
    /// Output reads larger than this go through the shared region.
    static let sharedOutputThreshold = 1024

    /// Opens the serial device in raw mode and `/dev/kmsg`.
    public init(device: String) throws(VMError) {
        do {
            channel = try retryingOnEINTR("open \(device)") { open(device, O_RDWR | O_NOCTTY | O_CLOEXEC) }
        } catch {
            throw VMError(.system, "open the agent channel", error)
        }
        var settings = termios()
        if tcgetattr(channel, &settings) == 0 {
            // Raw 8-bit transfer: no echo, no CR/LF translation, no signals,
            // no flow-control characters.
            cfmakeraw(&settings)
            settings.c_cflag |= tcflag_t(CLOCAL | CREAD)
            cfsetispeed(&settings, speed_t(B115200))
            cfsetospeed(&settings, speed_t(B115200))
            tcsetattr(channel, TCSANOW, &settings)
        }
        kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        shared = SharedRegion.guestDevice()
    }

    deinit {
        close(channel)
        if kmsg >= 0 { close(kmsg) }
    }

    /// Serves requests until the host goes away.
    public func serve() throws(VMError) {
        let boot = readKernelLog(maximumLevel: 4)
        try send(
            .ready(
                release: Kernel.release(), taint: Self.taint(), log: boot,
                sharedSize: UInt64(shared?.size ?? 0)))
        while let message = try receive() {
            switch message {
            case .run(let command):
                try run(command)
            case .upload(let path, let mode, let contents):
                try send(Self.answer { () throws(PlatformError) in try Self.write(contents, to: path, mode: mode) })
            case .uploadShared(let path, let mode, let length):
                guard let shared, length <= UInt64(shared.size) else {
                    try send(
                        .failed("upload of \(length) bytes does not fit the shared region (\(shared?.size ?? 0) bytes)")
                    )
                    continue
                }
                let contents = shared.read(Int(length))
                try send(Self.answer { () throws(PlatformError) in try Self.write(contents, to: path, mode: mode) })
            case .download(let path):
                let contents: [UInt8]
                do throws(PlatformError) {
                    contents = try FileSystem.read(path)
                } catch {
                    try send(.failed(error.description))
                    continue
                }
                if let shared, contents.count <= shared.size {
                    shared.write(contents)
                    try send(.fileShared(length: UInt64(contents.count)))
                } else {
                    try send(.file(contents))
                }
            case .cancel, .release:
                break  // nothing is running
            }
        }
    }

    /// `done`, or `failed` with the error's description.
    private static func answer(_ body: () throws(PlatformError) -> Void) -> GuestMessage {
        do { try body() } catch { return .failed(error.description) }
        return .done
    }

    // MARK: - Commands

    private func run(_ command: String) throws(VMError) {
        let child: ChildProcess
        do {
            child = try ChildProcess(
                ["/bin/sh", "-c", command],
                environment: [
                    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/sh",
                ],
                workingDirectory: "/",
                stdin: .null, stdout: .pipe, stderr: .pipe,
                newProcessGroup: true, killOnCleanup: false)
        } catch {
            try send(.stderr(Array("suture vm-agent: \(error.description)\n".utf8)))
            try send(.exit(status: 127, taint: Self.taint(), log: readKernelLog(maximumLevel: 7)))
            return
        }
        runningGroup = child.pid
        defer { runningGroup = 0 }
        var streams: [(fd: Int32, toStdout: Bool)] = [(child.standardOutput, true), (child.standardError, false)]
        for s in streams { _ = fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK) }
        var ended: Termination? = nil
        while ended == nil {
            var fds = streams.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            fds.append(pollfd(fd: channel, events: Int16(POLLIN), revents: 0))
            // With both pipes closed, only the exit is left to wait for; a
            // background job that keeps a pipe open must not hold up the
            // report, so the child is also checked on a short tick.
            let wait: Int32 = streams.isEmpty ? 20 : 100
            let ready = Glibc.poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 && currentErrno() != .interrupted {
                throw VMError(.system, "poll in the agent", errno: currentErrno())
            }
            if ready > 0 {
                var open: [(fd: Int32, toStdout: Bool)] = []
                for (i, s) in streams.enumerated() {
                    if fds[i].revents == 0 {
                        open.append(s)
                        continue
                    }
                    if try forward(s.fd, toStdout: s.toStdout) != .closed { open.append(s) }
                }
                streams = open
                if fds[fds.count - 1].revents != 0 {
                    guard try readFromHost() else {
                        throw VMError(.protocolError, "the host went away during a command")
                    }
                    while let frame = try decoder.next() { try handleDuringRun(try HostMessage(frame)) }
                }
            }
            ended = child.poll()
        }
        // Whatever the command wrote before it ended is in the pipes now.
        for s in streams { while try forward(s.fd, toStdout: s.toStdout) == .data {} }
        try send(.exit(status: ended!.status, taint: Self.taint(), log: readKernelLog(maximumLevel: 7)))
    }

    private enum ReadOutcome { case data, empty, closed }

    /// Sends what one read of a (non-blocking) pipe returns.
    private func forward(_ fd: Int32, toStdout: Bool) throws(VMError) -> ReadOutcome {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            let chunk = Array(buffer[0..<n])
            if let shared, n > Self.sharedOutputThreshold, n <= shared.size {
                shared.write(chunk)
                try send(.sharedOutput(toStdout: toStdout, length: UInt64(n)))
                try waitForRelease()
            } else {
                try send(toStdout ? .stdout(chunk) : .stderr(chunk))
            }
            return .data
        }
        if n < 0 && (currentErrno() == .interrupted || currentErrno() == .resourceTemporarilyUnavailable) {
            return .empty
        }
        return .closed
    }

    /// Blocks until the host has copied the shared region out.
    private func waitForRelease() throws(VMError) {
        while true {
            while let frame = try decoder.next() {
                let message = try HostMessage(frame)
                if message == .release { return }
                try handleDuringRun(message)
            }
            guard try readFromHost() else { throw VMError(.protocolError, "the host went away during a command") }
        }
    }

    /// Requests that may arrive while a command runs.
    private func handleDuringRun(_ message: HostMessage) throws(VMError) {
        switch message {
        case .cancel:
            if runningGroup > 0 { kill(-runningGroup, SIGKILL) }
        default:
            throw VMError(.protocolError, "request \(message) while a command runs")
        }
    }

    // MARK: - Files

    /// Writes through a temporary name and `rename(2)`, so a module being
    /// replaced is never seen half written.
    static func write(_ contents: [UInt8], to path: String, mode: UInt32) throws(PlatformError) {
        try FileSystem.makeDirectories(Path.directory(of: path))
        try FileSystem.writeAtomically(path, contents, mode: mode_t(mode & 0o7777))
        try FileSystem.setMode(path, mode_t(mode & 0o7777))
    }

    // MARK: - Kernel state

    static func taint() -> UInt64 {
        let text = FileSystem.readTextIfPresent("/proc/sys/kernel/tainted") ?? "0"
        return UInt64(text.trimmingWhitespace()) ?? 0
    }

    /// Every `/dev/kmsg` record not read before, up to `maximumLevel`.
    private func readKernelLog(maximumLevel: Int) -> String {
        guard kmsg >= 0 else { return "" }
        var lines = ""
        var record = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = record.withUnsafeMutableBytes { Glibc.read(kmsg, $0.baseAddress, $0.count) }
            if n < 0 {
                // EPIPE: records were overwritten before we read them; go on.
                if currentErrno() == .brokenPipe || currentErrno() == .interrupted { continue }
                break
            }
            if n == 0 { break }
            if let (level, line) = KernelLog.format(record: String(decoding: record[0..<n], as: UTF8.self)),
                level <= maximumLevel
            {
                lines += line + "\n"
            }
        }
        return lines
    }

    // MARK: - Channel

    private func send(_ message: GuestMessage) throws(VMError) {
        do {
            try FileSystem.writeAll(fd: channel, message.frame.encoded(), context: "agent channel")
        } catch {
            throw VMError(.protocolError, "write to the host", error)
        }
    }

    /// Reads what the host sent into the decoder, blocking until something
    /// comes; false when the channel closed.
    private func readFromHost() throws(VMError) -> Bool {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(channel, $0.baseAddress, $0.count) }
            if n > 0 {
                decoder.append(buffer[0..<n])
                return true
            }
            if n == 0 { return false }
            if currentErrno() != .interrupted {
                throw VMError(.protocolError, "read from the host", errno: currentErrno())
            }
        }
    }

    /// The next message from the host, blocking; nil if the channel closed.
    private func receive() throws(VMError) -> HostMessage? {
        while true {
            if let frame = try decoder.next() { return try HostMessage(frame) }
            guard try readFromHost() else { return nil }
        }
    }
}
