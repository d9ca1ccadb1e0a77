// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// How to boot a Debian guest.
public struct DebianGuestOptions: Sendable {
    public var kernel: KernelRelease
    /// Kept guests are named by the caller; a throwaway one gets `run-PID`.
    public var name: String
    /// Keep QEMU running after this process exits (`--keep`).
    public var keep = false
    public var memoryMB = 1024
    public var cpus = 1
    public var accelerator: Accelerator? = nil
    /// More kernel parameters (`--append`), for every boot of this guest.
    public var kernelArguments: [String] = []
    /// The `suture` installed in the guest; nil: the running executable.
    public var sutureBinary: String? = nil
    public var cache: String? = nil
    /// Seconds from starting QEMU until sshd must answer.
    public var bootTimeout: Double = 300

    public init(kernel: KernelRelease, name: String) {
        self.kernel = kernel
        self.name = name
    }
}

/// A Debian guest: the target kernel booted through a small initramfs that
/// mounts a copy-on-write overlay of the cached root (`DebianImage`) and
/// the kernel's modules, installs the current `suture` at
/// `/usr/local/bin/suture` and the host's key for root, and hands over to
/// systemd. The host reaches it by ssh on a port forwarded on 127.0.0.1.
///
/// A guest's files live in `CACHE/debian/guests/NAME`: the overlay
/// (`disk.qcow2`, backed by the cached image), the console log, QEMU's pid
/// and the guest's record. A guest reboot comes back on the same kernel,
/// initramfs and command line (QEMU resets the machine and boots `-kernel`
/// again).
public struct DebianGuest: Sendable {
    public var name: String
    public var directory: String
    public var sshPort: Int
    public var sshKey: String
    public var pid: pid_t
    public var release: String
    public var suite: String
    public var kernelArguments: [String]
    public var bootSeconds: Double = 0
    /// The overlay existed already (a guest stopped with `--keep-disk`).
    public var reusedDisk = false
    /// `/proc/sys/kernel/tainted` once sshd answered.
    public var bootTaint: UInt64 = 0

    public static let user = "root"

    public var overlay: String { Path.join(directory, "disk.qcow2") }
    public var consoleLog: String { Path.join(directory, "console.log") }
    static func recordPath(_ directory: String) -> String { Path.join(directory, "guest.record") }

    /// Letters, digits, `-`, `_` and `.`, not first; at most 40.
    public static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 40 && !name.hasPrefix(".") && !name.hasPrefix("-")
            && name.unicodeScalars.allSatisfy {
                ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value | 0x20 >= 0x61 && $0.value | 0x20 <= 0x7a)
                    || "-_.".unicodeScalars.contains($0)
            }
    }

    /// QEMU's `-name`, by which a guest's process is recognised.
    static func processName(_ name: String) -> String { "suture-guest-\(name)" }

    // MARK: - Starting

    /// Boots the guest and waits until root can log in by ssh. A
    /// throwaway guest's QEMU is returned too (it dies with this process);
    /// a kept one runs on by itself.
    public static func start(_ options: DebianGuestOptions) throws(VMError) -> (DebianGuest, ChildProcess?) {
        let started = Clock.now()
        guard validName(options.name) else {
            throw VMError(.usage, "\(options.name): a guest name is letters, digits, '-', '_' and '.'")
        }
        guard let suite = DebianImage.suite(of: options.kernel) else {
            throw VMError(.badInput, "cannot tell the Debian release of kernel \(options.kernel.release)")
        }
        guard let qemu = Command.which("qemu-system-x86_64") else {
            throw VMError(.missingTool, "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        }
        guard let qemuImg = Command.which("qemu-img") else {
            throw VMError(.missingTool, "qemu-img is not installed (apt-get install qemu-utils)")
        }
        let images = DebianImage(cache: options.cache)
        let root = try images.root(suite: suite).path
        let modules = try images.modules(of: options.kernel)
        let key = try images.keyPair()

        let directory = Path.join(images.guests, options.name)
        let guestLock = try images.takeLock("guests/.\(options.name).lock", what: "guest \(options.name)")
        defer { guestLock.unlock() }
        if let running = DebianGuest.load(directory), running.isAlive {
            throw VMError(.usage, "guest \(options.name) is running already (pid \(running.pid)); stop it first")
        }
        var guest = DebianGuest(
            name: options.name, directory: directory, sshPort: 0, sshKey: key, pid: 0,
            release: options.kernel.release, suite: suite, kernelArguments: options.kernelArguments)
        do throws(PlatformError) {
            try FileSystem.makeDirectories(directory, mode: 0o700)
            for name in try FileSystem.list(directory) where name != "disk.qcow2" {
                try? FileSystem.removeFile(Path.join(directory, name))
            }
        } catch {
            throw VMError(.system, "prepare \(directory)", error)
        }
        // A failed start leaves nothing behind, even when interrupted; a
        // throwaway guest's caller removes its folder (`remove()`).
        let token = options.keep ? nil : Cleanup.register { TreeCache.removeEventually(directory) }
        var keepDirectory = false
        defer {
            if let token { Cleanup.unregister(token) }
            if !keepDirectory { TreeCache.removeEventually(directory) }
        }
        if FileSystem.exists(guest.overlay) && options.keep {
            guest.reusedDisk = true
        } else {
            let made = try? Command.run([
                qemuImg, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", root, guest.overlay,
            ])
            guard let made, made.termination.succeeded else {
                throw VMError(.missingTool, "qemu-img create \(guest.overlay) failed: \(made?.stderrText ?? "")")
            }
        }
        let cacheDirectory = CacheLocation.vm(images.cache)
        try? FileSystem.makeDirectories(cacheDirectory)
        // This suture reaches the guest as a read-only disk of its bytes,
        // copied into the root at every boot: a cached root never holds a
        // stale one, and the initramfs stays small (TCG unpacks it slowly).
        let suture: String
        if let given = options.sutureBinary {
            suture = given
        } else {
            do { suture = try FileSystem.readLink("/proc/self/exe") } catch {
                throw VMError(.system, "find the suture executable", error)
            }
        }
        let stripped = StrippedExecutable.prepare(suture, cacheDirectory: cacheDirectory)
        let sutureSize: Int
        do { sutureSize = Int(try FileSystem.status(stripped).st_size) } catch {
            throw VMError(.badInput, "read \(stripped)", error)
        }
        try writeInitramfs(
            options, into: Path.join(directory, "initramfs.cpio"), publicKey: key + ".pub", suture: stripped,
            sutureSize: sutureSize)
        let kernel = BootKernel.prepare(options.kernel, cacheDirectory: cacheDirectory)
        let accelerator =
            options.accelerator ?? Accelerator.detect(qemu: qemu, kernel: kernel, cacheDirectory: cacheDirectory)
        let append =
            ["console=ttyS0", "quiet", "panic=-1", "net.ifnames=0", "systemd.show_status=0"]
            + options.kernelArguments
        func argv(port: Int) -> [String] {
            [
                qemu, "-name", processName(options.name), "-nodefaults", "-no-user-config", "-display", "none",
            ] + accelerator.qemuArguments + [
                "-m", String(options.memoryMB), "-smp", String(options.cpus),
                "-kernel", kernel.path, "-initrd", Path.join(directory, "initramfs.cpio"),
                "-append", append.joined(separator: " "),
                "-drive", "file=\(guest.overlay),format=qcow2,if=virtio,cache=unsafe,discard=unmap",
                "-drive", "file=\(modules),format=raw,if=virtio,readonly=on",
                "-drive", "file=\(stripped),format=raw,if=virtio,readonly=on",
                "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:\(port)-:22",
                "-device", "virtio-net-pci,netdev=net0",
                "-chardev", "file,id=console,path=\(guest.consoleLog)", "-serial", "chardev:console",
                "-pidfile", Path.join(directory, "qemu.pid"),
            ]
        }
        var process: ChildProcess? = nil
        // One port at a time: a port is free until QEMU binds it.
        let portLock = try images.takeLock("guests/.ports.lock", what: "a port for guest \(options.name)")
        do {
            let port = try freePort()
            guest.sshPort = port
            if options.keep {
                let result: CommandResult
                do {
                    result = try Command.run(argv(port: port) + ["-daemonize"], timeout: 120)
                } catch {
                    portLock.unlock()
                    throw VMError(.qemuFailed, "start \(qemu)", error)
                }
                guard result.termination.succeeded else {
                    portLock.unlock()
                    throw VMError(.qemuFailed, "QEMU failed to start: \(Command.tail(result.stderrText))")
                }
                let text = FileSystem.readTextIfPresent(Path.join(directory, "qemu.pid")) ?? ""
                guard let pid = pid_t(text.trimmingWhitespace()) else {
                    portLock.unlock()
                    throw VMError(.qemuFailed, "QEMU started but wrote no pid file")
                }
                guest.pid = pid
            } else {
                let errors = open(Path.join(directory, "qemu.err"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                defer { if errors >= 0 { close(errors) } }
                do {
                    process = try ChildProcess(
                        argv(port: port), stdin: .null, stdout: .null,
                        stderr: errors >= 0 ? .descriptor(errors) : .null, newProcessGroup: true)
                } catch {
                    portLock.unlock()
                    throw VMError(.qemuFailed, "start \(qemu)", error)
                }
                guest.pid = process!.pid
                // Bound once the forwarded port accepts connections.
                let deadline = Clock.now() + 30
                while !GuestSocket.accepts(port: port), process!.poll() == nil, Clock.now() < deadline {
                    Clock.sleep(seconds: 0.05)
                }
            }
        }
        portLock.unlock()
        do {
            try guest.writeRecord()
            try guest.waitForSSH(process: process, deadline: started + options.bootTimeout)
        } catch {
            guest.kill()
            process?.wait()
            throw error
        }
        guest.bootSeconds = Clock.now() - started
        keepDirectory = true
        try guest.writeRecord()
        return (guest, process)
    }

    /// The initramfs: busybox, this suture, the modules that reach the
    /// disks and the network, the host's public key, and an `/init` that
    /// mounts the root and starts systemd.
    private static func writeInitramfs(
        _ options: DebianGuestOptions, into path: String, publicKey: String, suture: String, sutureSize: Int
    ) throws(VMError) {
        let kernel = options.kernel
        let builtin = kernel.modulesDirectory.flatMap {
            FileSystem.readTextIfPresent(Path.join($0, "modules.builtin"))
        }
        let builtinNames = Set(
            (builtin ?? "").split(separator: "\n").map { ModuleDependencies.moduleName(ofPath: String($0)) })
        let wanted = ["virtio_pci", "virtio_blk", "ext4", "virtio_net"].filter {
            !builtinNames.contains(ModuleDependencies.normalized($0))
        }
        var image = GuestImage(
            release: kernel, sutureBinary: suture,
            files: [GuestFile(hostPath: publicKey, guestPath: "/suture/authorized_keys")], modules: wanted)
        image.includesSuture = false
        image.initText = initScript(release: kernel.release, modules: wanted, sutureSize: sutureSize)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VMError(.system, "create \(path)", errno: currentErrno()) }
        defer { close(fd) }
        try image.write(to: fd)
    }

    /// PID 1 of the initramfs. QEMU's user network is fixed (guest
    /// 10.0.2.15, gateway 10.0.2.2), so the address is set here once and
    /// survives the switch to the root; nothing waits for DHCP.
    static func initScript(release: String, modules: [String], sutureSize: Int) -> String {
        """
        #!/bin/sh
        export PATH=/usr/sbin:/usr/bin:/sbin:/bin
        fail() { echo "suture-init: $*" >/dev/console; sleep 2; poweroff -f; }
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        step() { echo "suture-init: $*" >/dev/kmsg; }
        step modules
        for m in \(modules.joined(separator: " ")); do modprobe $m || fail "modprobe $m failed"; done
        n=0
        while [ ! -b /dev/vda ] || [ ! -b /dev/vdb ] || [ ! -b /dev/vdc ]; do
            n=$((n + 1)); [ $n -gt 1000 ] && fail "no virtio disks"; sleep 0.01
        done
        step mount
        mkdir -p /newroot
        mount -t ext4 -o rw,noatime /dev/vda /newroot || fail "cannot mount the root file system"
        mkdir -p /newroot/lib/modules/\(release)
        mount -t ext4 -o ro /dev/vdb /newroot/lib/modules/\(release) || fail "cannot mount the modules"
        step suture
        dd if=/dev/vdc of=/newroot/usr/local/bin/.suture.new bs=1048576 iflag=count_bytes count=\(sutureSize) 2>/dev/null \\
            && chmod 755 /newroot/usr/local/bin/.suture.new \\
            && mv -f /newroot/usr/local/bin/.suture.new /newroot/usr/local/bin/suture || fail "cannot install suture"
        mkdir -p /newroot/root/.ssh && chmod 700 /newroot/root/.ssh
        cp /suture/authorized_keys /newroot/root/.ssh/authorized_keys && chmod 600 /newroot/root/.ssh/authorized_keys
        step network
        ip link set lo up
        ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 \\
            || fail "cannot configure eth0"
        step systemd
        umount /proc /sys
        mount --move /dev /newroot/dev
        exec switch_root /newroot /sbin/init

        """
    }

    /// A port on 127.0.0.1 nobody listens on now.
    static func freePort() throws(VMError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw VMError(.system, "socket", errno: currentErrno()) }
        defer { close(fd) }
        var address = GuestSocket.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw VMError(.system, "find a free port on 127.0.0.1", errno: currentErrno()) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
