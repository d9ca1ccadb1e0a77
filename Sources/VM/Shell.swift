// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// An interactive login shell on a guest, wired to this terminal.
public enum GuestShell {
    public struct Outcome: Sendable {
        public var kernelProblem: KernelProblem?
        /// The kernel console (ttyS0) of the whole session.
        public var console: String
    }

    /// Boots a guest whose ttyS1 is this process's standard input and
    /// output; returns once the shell exits (the guest then powers off).
    ///
    /// QEMU puts the terminal in raw mode, so Ctrl-C reaches the guest's
    /// shell. The terminal settings are restored afterwards, also when
    /// this process is interrupted.
    public static func run(_ configuration: VMConfiguration) throws(VMError) -> Outcome {
        var size = winsize()
        let hasSize = ioctl(1, UInt(TIOCGWINSZ), &size) == 0 && size.ws_row > 0
        var saved = termios()
        let isTerminal = tcgetattr(0, &saved) == 0
        let restore: @Sendable () -> Void = { [saved] in
            var settings = saved
            if isTerminal { tcsetattr(0, TCSANOW, &settings) }
        }
        let token = Cleanup.register(restore)
        defer {
            restore()
            Cleanup.unregister(token)
        }
        let launch = try QemuLaunch.start(
            configuration,
            secondSerial: .terminal(
                rows: hasSize ? Int(size.ws_row) : 24, columns: hasSize ? Int(size.ws_col) : 80))
        var console: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [pollfd(fd: launch.console, events: Int16(POLLIN), revents: 0)]
            if Glibc.poll(&fds, 1, -1) < 0 {
                if currentErrno() == .interrupted { continue }
                break
            }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(launch.console, $0.baseAddress, $0.count) }
            if n > 0 {
                console.append(contentsOf: buffer[0..<n])
                continue
            }
            if n < 0 && (currentErrno() == .interrupted || currentErrno() == .resourceTemporarilyUnavailable) {
                continue
            }
            break
        }
        close(launch.console)
        launch.process.wait()
        let text = KernelLog.consoleText(console)
        return Outcome(kernelProblem: KernelLog.problem(in: text), console: text)
    }
}
