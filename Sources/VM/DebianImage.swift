// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// The cached disks a Debian guest boots from, under `CACHE/debian`:
///
/// - `SUITE-rN.img`: a root file system of one Debian release (ext4, raw),
///   made once by `mmdebstrap --variant=minbase` with systemd as init,
///   sshd, python3 and kmod, and trimmed for a fast boot (no gettys, no
///   timers, a fixed machine id so no boot is a "first boot");
/// - `modules/RELEASE.img`: the kernel's own `/lib/modules/RELEASE` (ext4,
///   raw), mounted read-only in the guest, so one root serves every kernel
///   of its release;
/// - `ssh/id_ed25519`: the key pair the host logs in with, as root.
///
/// Guests never write these: each boots a copy-on-write overlay. Every
/// piece is made under a lock, staged under a hidden name and renamed into
/// place when complete.
public struct DebianImage: Sendable {
    public let cache: String
    public let mirror: String?

    public init(cache: String? = nil, mirror: String? = nil) {
        self.cache = CacheLocation.root(cache)
        self.mirror = mirror
    }

    /// `CACHE/debian`.
    public var directory: String { Path.join(cache, "debian") }
    /// Kept and running guests: `CACHE/debian/guests/NAME`.
    public var guests: String { Path.join(directory, "guests") }
    public var privateKey: String { Path.join(directory, "ssh", "id_ed25519") }

    /// What the root holds besides the minimal base.
    public static let packages = ["systemd-sysv", "udev", "openssh-server", "python3", "kmod", "iproute2"]
    /// Bumped when the recipe changes, so an older cached root is made again.
    static let recipe = "4"

    /// The Debian release a kernel belongs to: the suite it was fetched
    /// from or its `+debNN` suffix; else its series (6.1 is bookworm's,
    /// 6.12 trixie's); else the host's own release.
    public static func suite(of kernel: KernelRelease) -> String? {
        if let known = BuildRoots.release(of: kernel) { return known }
        switch kernel.series {
        case "6.1": return "bookworm"
        case "6.12": return "trixie"
        default: break
        }
        let osRelease = FileSystem.readTextIfPresent("/etc/os-release") ?? ""
        for line in osRelease.split(separator: "\n") where line.hasPrefix("VERSION_CODENAME=") {
            let name = line.dropFirst("VERSION_CODENAME=".count).filter { $0 != "\"" }
            if !name.isEmpty { return String(name) }
        }
        return nil
    }

    // MARK: - The root file system

    /// `CACHE/debian/SUITE-rRECIPE.img`, made when missing.
    public func root(suite: String) throws(VMError) -> (path: String, made: Bool, seconds: Double) {
        guard !suite.isEmpty, suite.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw VMError(.usage, "\(suite): not a Debian release name")
        }
        let started = Clock.now()
        // Named by recipe: an overlay names its backing file by path, so
        // a path never changes contents, and suture binaries of different
        // recipes sharing one cache do not remake each other's root.
        let image = Path.join(directory, "\(suite)-r\(DebianImage.recipe).img")
        let record = image + ".record"
        func ready() -> Bool {
            FileSystem.exists(image) && FileSystem.readTextIfPresent(record) == recordText(suite: suite)
        }
        if ready() { return (image, false, 0) }
        let lock = try takeLock(".\(suite)-r\(DebianImage.recipe).lock", what: "the Debian \(suite) image")
        defer { lock.unlock() }
        if ready() { return (image, false, 0) }
        let prefix = ".\(suite)-r\(DebianImage.recipe).partial-"
        // Left by a killed run: nobody else holds the lock.
        for name in (try? FileSystem.list(directory)) ?? [] where name.hasPrefix(prefix) {
            TreeCache.removeEventually(Path.join(directory, name))
        }
        let stage = Path.join(directory, prefix + String(getpid()))
        let stageImage = stage + ".img"
        let token = Cleanup.register {
            TreeCache.removeEventually(stage)
            try? FileSystem.removeFile(stageImage)
        }
        defer {
            Cleanup.unregister(token)
            TreeCache.removeEventually(stage)
            try? FileSystem.removeFile(stageImage)
        }
        try bootstrap(suite: suite, into: stage)
        try customize(stage)
        try makeFileSystem(from: stage, into: stageImage, label: "suture-root", megabytes: 2048)
        do {
            try FileSystem.rename(stageImage, image)
            try FileSystem.writeAtomically(record, Array(recordText(suite: suite).utf8))
        } catch {
            throw VMError(.system, "move the Debian image into \(image)", error)
        }
        let seconds = Clock.now() - started
        Progress.say("suture: Debian \(suite) image \(image) ready in \(Int(seconds.rounded())) s")
        return (image, true, seconds)
    }

    private func recordText(suite: String) -> String {
        "Suite: \(suite)\nRecipe: \(DebianImage.recipe)\nPackages: \(DebianImage.packages.joined(separator: ","))\n"
    }

    private func bootstrap(suite: String, into stage: String) throws(VMError) {
        guard Command.which("mmdebstrap") != nil else {
            throw VMError(
                .missingTool, "mmdebstrap is not installed; it makes Debian guests (apt-get install mmdebstrap)")
        }
        let arguments = KernelCatalog.mmdebstrapArguments(
            suite: suite, packages: DebianImage.packages, into: stage, mirror: mirror)
        Progress.say("suture: making the Debian \(suite) guest image with mmdebstrap (once; about a minute) …")
        let result: CommandResult
        do {
            result = try Command.run(arguments, environment: Command.environment(["LC_ALL": "C"]), timeout: 3600)
        } catch {
            throw VMError(.missingTool, "run mmdebstrap", error)
        }
        guard result.termination.succeeded else {
            throw VMError(
                .missingTool,
                "mmdebstrap \(suite) failed (\(result.termination)):\n\(Command.tail(result.stderrText + result.stdoutText, lines: 8))"
            )
        }
    }

    /// Units a test guest never needs; masking them shortens the boot.
    static let maskedUnits = [
        "getty.target", "serial-getty@ttyS0.service", "getty@tty1.service", "console-getty.service",
        "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
        "fstrim.timer", "dpkg-db-backup.timer", "man-db.timer", "systemd-timesyncd.service",
        "systemd-networkd-wait-online.service", "networking.service", "ifupdown-wait-online.service",
        "systemd-pstore.service", "systemd-firstboot.service", "systemd-machine-id-commit.service",
        "systemd-tmpfiles-clean.timer", "logrotate.timer", "remote-fs.target", "cron.service",
        "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
        "dev-hugepages.mount", "dev-mqueue.mount", "sys-fs-fuse-connections.mount", "sys-kernel-config.mount",
        "modprobe@fuse.service", "modprobe@dm_mod.service", "modprobe@loop.service", "modprobe@drm.service",
        "modprobe@efi_pstore.service", "modprobe@configfs.service", "systemd-sysusers.service",
        "systemd-hwdb-update.service", "systemd-journal-catalog-update.service", "ldconfig.service",
        "systemd-update-utmp-runlevel.service", "ssh.service", "systemd-journal-flush.service",
    ]

    /// sshd started by systemd per connection (`sshd -i`): the port
    /// answers as soon as sockets.target is reached, instead of after
    /// ssh.service's own start (a config test and a daemon, slow under TCG).
    static let sshSocket = """
        [Unit]
        Description=OpenSSH per-connection server socket (Suture guest)
        Before=sockets.target

        [Socket]
        ListenStream=22
        Accept=yes

        [Install]
        WantedBy=sockets.target

        """
    static let sshService = """
        [Unit]
        Description=OpenSSH per-connection server (Suture guest)

        [Service]
        ExecStart=-/usr/sbin/sshd -i
        StandardInput=socket
        StandardError=journal
        RuntimeDirectory=sshd
        RuntimeDirectoryMode=0755
        RuntimeDirectoryPreserve=yes

        """

    /// The files that make a bootstrapped folder a guest: fstab, host name,
    /// resolver (QEMU's user network), sshd by key only, a volatile journal.
    private func customize(_ root: String) throws(VMError) {
        let files: [(String, String, mode_t)] = [
            ("etc/fstab", "/dev/vda / ext4 rw,noatime 0 0\n", 0o644),
            ("etc/hostname", "suture-guest\n", 0o644),
            ("etc/hosts", "127.0.0.1 localhost\n127.0.1.1 suture-guest\n", 0o644),
            ("etc/resolv.conf", "nameserver 10.0.2.3\n", 0o644),
            // A fixed id: no boot of an overlay is a first boot (presets, firstboot).
            ("etc/machine-id", "5375747572652067756573742069640a\n", 0o444),
            (
                "etc/ssh/sshd_config.d/suture.conf",
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n",
                0o644
            ),
            ("etc/systemd/journald.conf.d/suture.conf", "[Journal]\nStorage=volatile\n", 0o644),
            ("etc/default/locale", "LANG=C.UTF-8\n", 0o644),
            ("etc/systemd/system/suture-sshd.socket", DebianImage.sshSocket, 0o644),
            ("etc/systemd/system/suture-sshd@.service", DebianImage.sshService, 0o644),
        ]
        do throws(PlatformError) {
            for (path, text, mode) in files {
                let full = Path.join(root, path)
                try FileSystem.makeDirectories(Path.directory(of: full))
                if FileSystem.kind(full) != .missing { try FileSystem.removeFile(full) }
                try FileSystem.write(full, text, mode: mode)
            }
            try FileSystem.makeDirectories(Path.join(root, "root/.ssh"), mode: 0o700)
            try FileSystem.makeDirectories(Path.join(root, "usr/local/bin"))
            let system = Path.join(root, "etc/systemd/system")
            try FileSystem.makeDirectories(Path.join(system, "sockets.target.wants"))
            try FileSystem.symlink(
                target: "/etc/systemd/system/suture-sshd.socket",
                at: Path.join(system, "sockets.target.wants/suture-sshd.socket"))
            try? FileSystem.removeFile(Path.join(system, "multi-user.target.wants/ssh.service"))
            try? FileSystem.removeFile(Path.join(system, "sshd.service"))
            for unit in DebianImage.maskedUnits {
                let link = Path.join(system, unit)
                if FileSystem.kind(link) != .missing { try FileSystem.removeFile(link) }
                try FileSystem.symlink(target: "/dev/null", at: link)
            }
        } catch {
            throw VMError(.system, "customize the Debian image in \(root)", error)
        }
    }

    /// `mkfs.ext4 -d FOLDER` into a sparse raw image of `megabytes`.
    private func makeFileSystem(from folder: String, into image: String, label: String, megabytes: Int) throws(VMError)
    {
        guard let mkfs = Command.which("mkfs.ext4") else {
            throw VMError(.missingTool, "mkfs.ext4 is not installed (apt-get install e2fsprogs)")
        }
        let result: CommandResult
        do {
            result = try Command.run(
                [mkfs, "-q", "-F", "-L", label, "-E", "lazy_itable_init=1", "-d", folder, image, "\(megabytes)M"],
                timeout: 1800)
        } catch {
            throw VMError(.missingTool, "run mkfs.ext4", error)
        }
        guard result.termination.succeeded else {
            throw VMError(.missingTool, "mkfs.ext4 -d \(folder) failed: \(Command.tail(result.stderrText))")
        }
    }

    // MARK: - The kernel's modules

    /// `CACHE/debian/modules/RELEASE.img`, made when missing.
    public func modules(of kernel: KernelRelease) throws(VMError) -> String {
        guard let folder = kernel.modulesDirectory else {
            throw VMError(.badInput, "kernel \(kernel.release) has no modules folder; a Debian guest needs its modules")
        }
        let directory = Path.join(self.directory, "modules")
        let image = Path.join(directory, "\(kernel.release).img")
        if FileSystem.exists(image) { return image }
        let lock = try takeLock("modules/.\(kernel.release).lock", what: "the modules image of \(kernel.release)")
        defer { lock.unlock() }
        if FileSystem.exists(image) { return image }
        let stage = Path.join(directory, ".\(kernel.release).partial-\(getpid()).img")
        let token = Cleanup.register { try? FileSystem.removeFile(stage) }
        defer {
            Cleanup.unregister(token)
            try? FileSystem.removeFile(stage)
        }
        var megabytes = 256
        if let du = try? Command.run(["du", "-sm", "--apparent-size", folder]), du.termination.succeeded,
            let used = Int(du.stdoutText.prefix { $0.isNumber })
        {
            megabytes = used + used / 4 + 64
        }
        Progress.say("suture: making the modules image of \(kernel.release) (once) …")
        try makeFileSystem(from: folder, into: stage, label: "suture-modules", megabytes: megabytes)
        do { try FileSystem.rename(stage, image) } catch {
            throw VMError(.system, "move the modules image into \(image)", error)
        }
        return image
    }

    // MARK: - The key pair

    /// The private key (made when missing); its `.pub` is next to it.
    public func keyPair() throws(VMError) -> String {
        let key = privateKey
        if FileSystem.exists(key + ".pub") { return key }
        let lock = try takeLock("ssh/.lock", what: "the guests' key pair")
        defer { lock.unlock() }
        if FileSystem.exists(key + ".pub") { return key }
        guard let keygen = Command.which("ssh-keygen") else {
            throw VMError(.missingTool, "ssh-keygen is not installed (apt-get install openssh-client)")
        }
        try? FileSystem.removeFile(key)
        let result: CommandResult
        do {
            try FileSystem.makeDirectories(Path.directory(of: key), mode: 0o700)
            result = try Command.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "suture-guests", "-f", key])
        } catch {
            throw VMError(.missingTool, "run ssh-keygen", error)
        }
        guard result.termination.succeeded else {
            throw VMError(.missingTool, "ssh-keygen failed: \(Command.tail(result.stderrText))")
        }
        return key
    }

    func takeLock(_ name: String, what: String) throws(VMError) -> FileLock {
        do {
            return try FileLock(path: Path.join(directory, name), timeout: 3600) {
                Progress.say("suture: another suture process is making \(what); waiting …")
            }
        } catch {
            throw VMError(.system, "lock \(what)", error)
        }
    }
}
