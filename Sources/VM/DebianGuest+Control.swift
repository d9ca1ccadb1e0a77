// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// Talking to a Debian guest: ssh, its record, stopping and listing.
extension DebianGuest {
    /// The ssh command that logs in as root (host keys are the image's,
    /// shared by every guest, so they are not remembered).
    public var sshArguments: [String] {
        [
            "ssh", "-i", sshKey, "-p", String(sshPort), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
            "-o", "IdentitiesOnly=yes", "\(DebianGuest.user)@127.0.0.1",
        ]
    }

    /// `sshArguments` as one shell line, for people and other tools.
    public var sshCommand: String {
        sshArguments.map { Progress.shellQuoted($0) }.joined(separator: " ")
    }

    /// Runs `command` (a shell line) as root in the guest.
    public func run(
        _ command: String, input: [UInt8]? = nil, timeout: Double? = nil,
        onOutput: ((Command.Stream, UnsafeRawBufferPointer) -> Void)? = nil
    ) throws(VMError) -> CommandResult {
        do {
            return try Command.run(sshArguments + ["--", command], input: input, timeout: timeout, onOutput: onOutput)
        } catch {
            throw VMError(.missingTool, "run ssh (apt-get install openssh-client)", error)
        }
    }

    /// Waits until sshd greets and root logs in, reading the boot's taint.
    mutating func waitForSSH(process: ChildProcess?, deadline: Double) throws(VMError) {
        while true {
            if let process, let ended = process.poll() {
                throw VMError(.qemuFailed, "QEMU stopped while the guest booted (\(ended)): \(failureDetail())")
            }
            if process == nil && !isAlive {
                throw VMError(.qemuFailed, "QEMU stopped while the guest booted: \(failureDetail())")
            }
            if Clock.now() > deadline {
                throw VMError(.bootTimeout, "sshd in guest \(name) did not answer in time; \(failureDetail())")
            }
            if GuestSocket.greets(port: sshPort),
                let login = try? run("cat /proc/sys/kernel/tainted", timeout: 60), login.termination.succeeded
            {
                bootTaint = UInt64(login.stdoutText.trimmingWhitespace()) ?? 0
                return
            }
            Clock.sleep(seconds: 0.25)
        }
    }

    /// The end of the console log.
    public func failureDetail() -> String {
        let console = KernelLog.consoleText(Array((FileSystem.readTextIfPresent(consoleLog) ?? "").utf8))
        let errors = FileSystem.readTextIfPresent(Path.join(directory, "qemu.err"))?.trimmingWhitespace() ?? ""
        var parts: [String] = []
        if !errors.isEmpty { parts.append("QEMU: \(Command.tail(errors))") }
        parts.append(console.isEmpty ? "no console output" : "console:\n\(Command.tail(console))")
        return parts.joined(separator: "\n")
    }

    /// The console's text, for the kernel problems it shows.
    public var consoleText: String {
        KernelLog.consoleText(Array((FileSystem.readTextIfPresent(consoleLog) ?? "").utf8))
    }

    // MARK: - Record

    func writeRecord() throws(VMError) {
        let text = """
            name=\(name)
            sshPort=\(sshPort)
            sshKey=\(sshKey)
            pid=\(pid)
            release=\(release)
            suite=\(suite)
            append=\(kernelArguments.joined(separator: " "))
            bootSeconds=\(bootSeconds)

            """
        do { try FileSystem.writeAtomically(DebianGuest.recordPath(directory), Array(text.utf8), mode: 0o600) } catch {
            throw VMError(.system, "write the record of guest \(name)", error)
        }
    }

    /// The guest recorded in `directory`, if any.
    public static func load(_ directory: String) -> DebianGuest? {
        guard let text = FileSystem.readTextIfPresent(recordPath(directory)) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        guard let name = fields["name"], let port = fields["sshPort"].flatMap({ Int($0) }),
            let pid = fields["pid"].flatMap({ pid_t($0) })
        else { return nil }
        var guest = DebianGuest(
            name: name, directory: directory, sshPort: port, sshKey: fields["sshKey"] ?? "", pid: pid,
            release: fields["release"] ?? "", suite: fields["suite"] ?? "",
            kernelArguments: (fields["append"] ?? "").split(separator: " ").map(String.init))
        guest.bootSeconds = fields["bootSeconds"].flatMap { Double($0) } ?? 0
        return guest
    }

    /// Whether its QEMU runs: the pid is alive and is this guest's QEMU.
    public var isAlive: Bool {
        guard pid > 0, let bytes = try? FileSystem.read("/proc/\(pid)/cmdline") else { return false }
        let words = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return words.contains(DebianGuest.processName(name))
    }

    func kill() {
        if isAlive { Glibc.kill(pid, SIGKILL) }
    }

    /// The JSON `--keep` and `--list` print.
    public var json: JSON {
        .object([
            ("name", .string(name)), ("sshPort", .int(Int64(sshPort))), ("sshKey", .string(sshKey)),
            ("user", .string(DebianGuest.user)), ("pid", .int(Int64(pid))), ("release", .string(release)),
            ("suite", .string(suite)), ("append", .array(kernelArguments.map { .string($0) })),
            ("overlay", .string(overlay)), ("console", .string(consoleLog)),
            ("bootSeconds", .double((bootSeconds * 100).rounded() / 100)), ("running", .bool(isAlive)),
            ("ssh", .string(sshCommand)),
        ])
    }

    // MARK: - Stopping and listing

    /// Powers guest `name` off (orderly when it answers, else by signal)
    /// and removes its files; `keepDisk` keeps the overlay, so the next
    /// `--keep NAME` boots the same disk. False when there was no such guest.
    @discardableResult
    public static func stop(name: String, keepDisk: Bool = false, cache: String? = nil) throws(VMError) -> Bool {
        guard validName(name) else { throw VMError(.usage, "\(name): not a guest name") }
        let images = DebianImage(cache: cache)
        let directory = Path.join(images.guests, name)
        guard FileSystem.isDirectory(directory) else { return false }
        let lock = try images.takeLock("guests/.\(name).lock", what: "guest \(name)")
        defer { lock.unlock() }
        if let guest = load(directory), guest.isAlive {
            _ = try? guest.run("systemctl poweroff --no-block", timeout: 15)
            let deadline = Clock.now() + 30
            while guest.isAlive && Clock.now() < deadline { Clock.sleep(seconds: 0.1) }
            if guest.isAlive {
                Glibc.kill(guest.pid, SIGTERM)
                let last = Clock.now() + 5
                while guest.isAlive && Clock.now() < last { Clock.sleep(seconds: 0.1) }
                guest.kill()
            }
        }
        if keepDisk {
            for entry in (try? FileSystem.list(directory)) ?? [] where entry != "disk.qcow2" && entry != "guest.record"
            {
                try? FileSystem.removeFile(Path.join(directory, entry))
            }
        } else {
            TreeCache.removeEventually(directory)
        }
        return true
    }

    /// Every guest with a record, running or stopped with its disk kept.
    public static func list(cache: String? = nil) -> [DebianGuest] {
        let directory = DebianImage(cache: cache).guests
        return ((try? FileSystem.list(directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted().compactMap {
            load(Path.join(directory, $0))
        }
    }
}

/// Probing the forwarded port.
enum GuestSocket {
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    /// A connected socket to 127.0.0.1:port, or -1.
    private static func connected(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = loopback(port: port)
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if !ok {
            close(fd)
            return -1
        }
        return fd
    }

    /// Whether something listens on the port (QEMU accepts for the guest
    /// even before the guest does).
    static func accepts(port: Int) -> Bool {
        let fd = connected(port: port)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    /// Whether an SSH server greets on the port within 3 s.
    static func greets(port: Int) -> Bool {
        let fd = connected(port: port)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        guard Glibc.poll(&fds, 1, 3000) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n >= 4 && buffer[0..<4] == [0x53, 0x53, 0x48, 0x2d]  // "SSH-"
    }
}
