// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// The initramfs of a throwaway guest: busybox, the `suture` binary with
/// its libraries, `/init`, the requested kernel modules and the user's
/// files, written as one `newc` archive.
///
/// The archive is written straight into a descriptor (a memfd), so no
/// file is left on disk whatever happens to the host process.
public struct GuestImage: Sendable {
    public var release: KernelRelease
    /// The `suture` executable that runs as the guest agent.
    public var sutureBinary: String
    /// A busybox binary (static or not: its libraries travel too).
    public var busybox: String
    public var files: [GuestFile]
    public var modules: [String]
    /// Replaces the busybox guest's `/init` (the Debian guest's boots the
    /// real root file system instead of the agent).
    public var initText: String? = nil
    /// Whether `sutureBinary` (and its libraries) go in; the Debian
    /// guest's initramfs gets it on a disk instead and stays small.
    public var includesSuture = true

    public init(
        release: KernelRelease, sutureBinary: String, busybox: String = "/bin/busybox",
        files: [GuestFile] = [], modules: [String] = []
    ) {
        self.release = release
        self.sutureBinary = sutureBinary
        self.busybox = busybox
        self.files = files
        self.modules = modules
    }

    /// Where staged files wait until /init has mounted tmpfs on /tmp.
    static let stageDirectory = "/.suture-stage"

    /// Writes the archive to `fd`; returns its size in bytes.
    @discardableResult
    public func write(to fd: Int32) throws(VMError) -> Int {
        var cpio = CpioWriter(fd: fd)
        try writeEntries(into: &cpio)
        return cpio.finish().size
    }

    /// The archive in memory (for tests and inspection).
    public func archive() throws(VMError) -> [UInt8] {
        var cpio = CpioWriter()
        try writeEntries(into: &cpio)
        return cpio.finish().bytes
    }

    private func writeEntries(into cpio: inout CpioWriter) throws(VMError) {
        for (path, mode) in [
            ("/bin", 0o755), ("/sbin", 0o755), ("/usr/bin", 0o755), ("/usr/sbin", 0o755),
            ("/etc", 0o755), ("/proc", 0o555), ("/sys", 0o555), ("/dev", 0o755),
            ("/tmp", 0o1777), ("/root", 0o700), ("/run", 0o755), ("/mnt", 0o755),
            ("/var/tmp", 0o1777),
        ] as [(String, UInt32)] {
            try cpio.directory(path, mode: mode)
        }
        // The kernel opens /dev/console for /init's standard streams before
        // devtmpfs is mounted.
        try cpio.characterDevice("/dev/console", mode: 0o600, major: 5, minor: 1)

        try addExecutable(busybox, at: "/bin/busybox", into: &cpio)
        for applet in try busyboxApplets() {
            try cpio.symlink(applet, target: "/bin/busybox")
        }
        var libraries = try SharedLibraries.of(busybox)
        if includesSuture {
            try addExecutable(sutureBinary, at: "/bin/suture", into: &cpio)
            for library in try SharedLibraries.of(sutureBinary) where !libraries.contains(library) {
                libraries.append(library)
            }
        }
        for library in libraries {
            try addHostFile(library, at: library, mode: 0o755, into: &cpio)
        }

        try cpio.file(
            "/etc/passwd", mode: 0o644,
            text: """
                root:x:0:0:root:/root:/bin/sh
                nobody:x:65534:65534:nobody:/nonexistent:/bin/sh

                """)
        try cpio.file("/etc/group", mode: 0o644, text: "root:x:0:\nnogroup:x:65534:\n")
        try cpio.file("/init", mode: 0o755, text: initText ?? GuestImage.initScript)

        if !modules.isEmpty { try addModules(into: &cpio) }
        try addUserFiles(into: &cpio)
    }

    // MARK: - /init

    /// PID 1 of the guest. It mounts the pseudo file systems, moves staged
    /// files into place and starts the agent (or, for `--shell`, a login
    /// shell on ttyS1), then powers off when that ends. Unknown
    /// `name=value` kernel parameters reach it as environment variables.
    static let initScript = """
        #!/bin/sh
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        mkdir -p /dev/pts /dev/shm
        mount -t devpts devpts /dev/pts
        mount -t debugfs debugfs /sys/kernel/debug
        mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
        mount -t tmpfs -o mode=1777 tmpfs /tmp
        if [ -d \(stageDirectory) ]; then cp -a \(stageDirectory)/. / && rm -rf \(stageDirectory); fi
        mode=$suture_mode
        unset suture_mode
        if [ "$mode" = shell ]; then
            rows=${suture_rows:-24} cols=${suture_cols:-80}
            unset suture_rows suture_cols
            export PS1='suture-vm:\\w# '
            cd /root
            # The size must be set while the shell holds the tty open.
            setsid -c sh -c "stty rows $rows cols $cols; exec sh" <>/dev/ttyS1 >&0 2>&0
        else
            /bin/suture vm-agent /dev/ttyS1
        fi
        poweroff -f

        """

    // MARK: - Parts

    private func busyboxApplets() throws(VMError) -> [String] {
        let listing: String
        do {
            listing = try Command.output([busybox, "--list-full"])
        } catch {
            throw VMError(.missingTool, "list the applets of \(busybox) (install busybox-static)", error)
        }
        return listing.split(separator: "\n").map { "/" + $0 }.filter {
            $0 != "/bin/busybox" && !$0.hasSuffix("/init")
        }
    }

    private func addExecutable(_ hostPath: String, at guestPath: String, into cpio: inout CpioWriter) throws(VMError) {
        guard access(hostPath, X_OK) == 0 else {
            throw VMError(.missingTool, "\(hostPath) is missing or not executable")
        }
        try addHostFile(hostPath, at: guestPath, mode: 0o755, into: &cpio)
    }

    /// Copies a host file's bytes (following symlinks) into the archive.
    private func addHostFile(
        _ hostPath: String, at guestPath: String, mode: UInt32?,
        into cpio: inout CpioWriter
    ) throws(VMError) {
        let file: MappedFile
        let permissions: UInt32
        do throws(PlatformError) {
            file = try MappedFile(path: hostPath)
            if let mode {
                permissions = mode
            } else {
                permissions = UInt32(try FileSystem.status(hostPath).st_mode & 0o7777)
            }
        } catch {
            throw VMError(.badInput, "read \(hostPath)", error)
        }
        try cpio.file(guestPath, mode: permissions, contents: file.bytes)
    }

    // MARK: - Modules

    /// The named modules and their dependencies, decompressed, with a
    /// `modules.dep` (and `modules.alias`) limited to them, so that
    /// busybox `modprobe NAME` works in the guest.
    private func addModules(into cpio: inout CpioWriter) throws(VMError) {
        guard let directory = release.modulesDirectory else {
            throw VMError(
                .badInput, "kernel \(release.release) has no /lib/modules directory, so --modules cannot work")
        }
        let depPath = Path.join(directory, "modules.dep")
        guard let depText = FileSystem.readTextIfPresent(depPath) else {
            throw VMError(.badInput, "cannot read \(depPath) (run depmod \(release.release))")
        }
        let builtin = FileSystem.readTextIfPresent(Path.join(directory, "modules.builtin")) ?? ""
        let aliases = FileSystem.readTextIfPresent(Path.join(directory, "modules.alias")) ?? ""
        let graph = ModuleDependencies(
            modulesDep: depText, softdep: FileSystem.readTextIfPresent(Path.join(directory, "modules.softdep")) ?? "",
            alias: aliases)
        let builtinNames = Set(builtin.split(separator: "\n").map { ModuleDependencies.moduleName(ofPath: String($0)) })
        for name in modules where graph.module(named: name) == nil {
            if builtinNames.contains(ModuleDependencies.normalized(name)) {
                throw VMError(
                    .badInput,
                    "\(name) is built into kernel \(release.release), not a module: leave it out of --modules")
            }
            throw VMError(.badInput, "kernel \(release.release) has no module \(name) (not in \(depPath))")
        }
        let closure = try graph.closure(of: modules)
        let guestDirectory = "/lib/modules/\(release.release)"
        var depLines = ""
        for module in closure {
            let target = ModuleDependencies.uncompressedPath(module.path)
            let source = Path.join(directory, module.path)
            let compression = ModuleDependencies.Compression(path: module.path)
            if let decompressor = compression.decompressor {
                let result: CommandResult
                do {
                    result = try Command.run(decompressor + [source])
                } catch {
                    throw VMError(.missingTool, "decompress \(source)", error)
                }
                guard result.termination.succeeded else {
                    throw VMError(
                        .badInput,
                        "\(decompressor.joined(separator: " ")) \(source) failed: \(Command.tail(result.stderrText))")
                }
                try cpio.file(Path.join(guestDirectory, target), mode: 0o644, bytes: result.stdout)
            } else {
                try addHostFile(source, at: Path.join(guestDirectory, target), mode: 0o644, into: &cpio)
            }
            let dependencies = module.dependencies.map { ModuleDependencies.uncompressedPath($0) }
            depLines += target + ":" + dependencies.map { " " + $0 }.joined() + "\n"
        }
        try cpio.file(Path.join(guestDirectory, "modules.dep"), mode: 0o644, text: depLines)
        let names = Set(closure.map(\.name))
        var kept = ""
        for line in aliases.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 3, words[0] == "alias", names.contains(ModuleDependencies.normalized(String(words[2]))) {
                kept += line + "\n"
            }
        }
        try cpio.file(Path.join(guestDirectory, "modules.alias"), mode: 0o644, text: kept)
        try cpio.file(Path.join(guestDirectory, "modules.builtin"), mode: 0o644, text: builtin)
    }

    // MARK: - User files

    private func addUserFiles(into cpio: inout CpioWriter) throws(VMError) {
        var stagedTmp = false
        for file in files {
            let guest = file.guestPath
            guard guest.hasPrefix("/") else {
                throw VMError(.usage, "--add \(file.hostPath):\(guest): the guest path must be absolute")
            }
            let normalized = "/" + (try CpioWriter.entryName(guest))
            if let root = GuestFile.refusedRoots.first(where: { GuestFile.isUnder(normalized, $0) }) {
                throw VMError(
                    .usage, "--add \(file.hostPath): \(guest) would be hidden by the \(root) mount in the guest")
            }
            var target = normalized
            if GuestFile.isUnder(normalized, GuestFile.stagedRoot) {
                if !stagedTmp {
                    try cpio.directory(GuestImage.stageDirectory + GuestFile.stagedRoot, mode: 0o1777)
                    stagedTmp = true
                }
                target = GuestImage.stageDirectory + normalized
            }
            // The named path itself is followed if it is a symlink.
            guard FileSystem.exists(file.hostPath) else {
                throw VMError(.badInput, "--add \(file.hostPath): no such file or directory")
            }
            if FileSystem.isDirectory(file.hostPath) {
                try addDirectory(file.hostPath, at: target, into: &cpio)
            } else {
                try addHostFile(file.hostPath, at: target, mode: nil, into: &cpio)
            }
        }
    }

    /// A directory tree, keeping modes and symlinks.
    private func addDirectory(_ hostPath: String, at guestPath: String, into cpio: inout CpioWriter) throws(VMError) {
        let mode: UInt32
        let names: [String]
        do {
            mode = UInt32(try FileSystem.status(hostPath).st_mode & 0o7777)
            names = try FileSystem.list(hostPath)
        } catch {
            throw VMError(.badInput, "read directory \(hostPath)", error)
        }
        try cpio.directory(guestPath, mode: mode)
        for name in names {
            let child = Path.join(hostPath, name)
            let target = Path.join(guestPath, name)
            switch FileSystem.kind(child) {
            case .directory:
                try addDirectory(child, at: target, into: &cpio)
            case .file:
                try addHostFile(child, at: target, mode: nil, into: &cpio)
            case .symlink:
                let destination: String
                do { destination = try FileSystem.readLink(child) } catch {
                    throw VMError(.badInput, "read link \(child)", error)
                }
                try cpio.symlink(target, target: destination)
            case .other, .missing:
                throw VMError(.badInput, "--add: \(child) is neither a file, a directory nor a symlink")
            }
        }
    }
}
