// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// What a guest boots with: the kernel, its modules, the files to add and
/// the machine's size. Shared by `VirtualMachine` and the interactive shell.
public struct VMConfiguration: Sendable {
    public var kernel: KernelRelease
    /// Host files and directories to place in the guest.
    public var files: [GuestFile] = []
    /// Modules of `kernel` (with their dependencies) for `modprobe`.
    public var modules: [String] = []
    public var memoryMB: Int = 512
    public var cpus: Int = 1
    /// nil: KVM if it works here, else TCG.
    public var accelerator: Accelerator? = nil
    /// The `suture` executable to run as the guest agent; nil means the
    /// running executable. Test processes must name the real binary.
    public var sutureBinary: String? = nil
    /// Where the vmlinux extraction and KVM probe are cached.
    public var cacheRoot: String = CacheLocation.root()
    /// Seconds from starting QEMU until the agent must have reported.
    public var bootTimeout: Double = 180
    /// More kernel parameters, appended after Suture's own.
    public var kernelArguments: [String] = []
    /// Boot through UEFI firmware with Secure Boot on (`SecureBootFirmware`):
    /// the signed image itself, verified, and the kernel locked down.
    public var secureBoot = false
    /// With `secureBoot`: a certificate (PEM or DER) the firmware hands the
    /// kernel as a machine owner key.
    public var machineOwnerKey: String? = nil

    public init(kernel: KernelRelease) {
        self.kernel = kernel
    }
}

/// A started QEMU process with its console and agent channels, and the
/// facts about how it was started.
struct QemuLaunch {
    let process: ChildProcess
    /// Our end of the socket that carries ttyS0, the kernel console.
    let console: Int32
    /// Our end of the socket that carries ttyS1, or -1 when ttyS1 is on
    /// QEMU's standard streams (the interactive shell).
    let agent: Int32
    /// QEMU's standard error, or -1 when inherited.
    let errors: Int32
    /// The memfd behind the shared transfer region (agent mode), or -1.
    /// The caller maps and closes it.
    let transfer: Int32
    let accelerator: Accelerator
    let initramfsSize: Int
    let bootKernel: BootKernel

    /// How ttyS1 is connected.
    enum SecondSerial {
        case agentSocket
        case terminal(rows: Int, columns: Int)
    }

    static func start(_ configuration: VMConfiguration, secondSerial: SecondSerial) throws(VMError) -> QemuLaunch {
        guard let qemu = Command.which("qemu-system-x86_64") else {
            throw VMError(.missingTool, "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        }
        let suture: String
        if let given = configuration.sutureBinary {
            suture = given
        } else {
            do { suture = try FileSystem.readLink("/proc/self/exe") } catch {
                throw VMError(.system, "find the suture executable", error)
            }
        }
        let cacheDirectory = writableDirectory(CacheLocation.vm(configuration.cacheRoot))
        // Secure Boot verifies the distribution's signed bzImage, never an
        // extracted vmlinux.
        let kernel =
            configuration.secureBoot
            ? BootKernel.bzImage(configuration.kernel)
            : BootKernel.prepare(configuration.kernel, cacheDirectory: cacheDirectory)
        var firmware: SecureBootFirmware? = nil
        if configuration.secureBoot {
            guard let cacheDirectory else {
                throw VMError(
                    .system,
                    "Secure Boot needs a writable cache for its firmware variables: \(CacheLocation.vm(configuration.cacheRoot))"
                )
            }
            firmware = try SecureBootFirmware.prepare(
                kernel: configuration.kernel, mok: configuration.machineOwnerKey, cacheDirectory: cacheDirectory)
        }
        let accelerator =
            configuration.accelerator
            ?? Accelerator.detect(qemu: qemu, kernel: kernel, cacheDirectory: cacheDirectory)

        // The initramfs lives only in a memfd that QEMU inherits: nothing
        // on disk to leave behind, whatever happens to either process.
        let initramfs: Int32
        do {
            initramfs = try Kernel.memfdCreate(name: "suture-initramfs").rawValue
        } catch {
            throw VMError(.system, "create the initramfs", error)
        }
        defer { close(initramfs) }
        // The firmware writes its variables: each boot gets its own copy.
        var variables: Int32 = -1
        if let firmware {
            do {
                variables = try Kernel.memfdCreate(name: "suture-uefi-vars").rawValue
                try FileSystem.writeAll(
                    fd: variables, try FileSystem.read(firmware.variables), context: "UEFI variables")
            } catch {
                if variables >= 0 { close(variables) }
                throw VMError(.system, "copy the UEFI variables", error)
            }
        }
        defer { if variables >= 0 { close(variables) } }
        let image = GuestImage(
            release: configuration.kernel,
            sutureBinary: StrippedExecutable.prepare(suture, cacheDirectory: cacheDirectory),
            files: configuration.files, modules: configuration.modules)
        let initramfsSize = try image.write(to: initramfs)

        let console = try socketPair()
        var agent: (ours: Int32, theirs: Int32)? = nil
        var transfer: Int32 = -1
        var closeOnExit = [console.theirs]
        defer { for fd in closeOnExit { close(fd) } }
        var kernelArguments = ["console=ttyS0", "quiet", "panic=-1"]
        var argv = [
            qemu, "-name", "suture-vm-\(getpid())", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot",
        ]
        argv += accelerator.qemuArguments
        if firmware != nil { argv += SecureBootFirmware.qemuArguments(variablesFD: variables) }
        argv += [
            "-m", String(configuration.memoryMB), "-smp", String(configuration.cpus),
            "-kernel", kernel.path, "-initrd", "/proc/self/fd/\(initramfs)",
            "-chardev", "socket,id=console,fd=\(console.theirs)", "-serial", "chardev:console",
        ]
        var descriptors = [initramfs, console.theirs]
        if variables >= 0 { descriptors.append(variables) }
        switch secondSerial {
        case .agentSocket:
            let pair: (ours: Int32, theirs: Int32)
            do {
                transfer = try SharedRegion.createBacking()
                pair = try socketPair()
            } catch {
                close(console.ours)
                if transfer >= 0 { close(transfer) }
                throw error
            }
            agent = pair
            closeOnExit.append(pair.theirs)
            descriptors += [pair.theirs, transfer]
            argv += ["-chardev", "socket,id=agent,fd=\(pair.theirs)", "-serial", "chardev:agent"]
            argv += SharedRegion.qemuArguments(fd: transfer)
            kernelArguments.append("suture_mode=agent")
        case .terminal(let rows, let columns):
            argv += ["-chardev", "stdio,id=agent,signal=off", "-serial", "chardev:agent"]
            kernelArguments += ["suture_mode=shell", "suture_rows=\(rows)", "suture_cols=\(columns)"]
        }
        argv += ["-append", (kernelArguments + configuration.kernelArguments).joined(separator: " ")]

        let interactive = agent == nil
        let process: ChildProcess
        do {
            process = try ChildProcess(
                argv,
                stdin: interactive ? .inherit : .null,
                stdout: interactive ? .inherit : .null,
                stderr: interactive ? .inherit : .pipe,
                extraDescriptors: descriptors,
                // A terminal-facing QEMU must stay in the foreground group to
                // read the terminal; otherwise Ctrl-C is ours to handle.
                newProcessGroup: !interactive)
        } catch {
            close(console.ours)
            if let agent { close(agent.ours) }
            if transfer >= 0 { close(transfer) }
            throw VMError(.qemuFailed, "start \(qemu)", error)
        }
        return QemuLaunch(
            process: process, console: console.ours, agent: agent?.ours ?? -1,
            errors: process.standardError, transfer: transfer, accelerator: accelerator,
            initramfsSize: initramfsSize, bootKernel: kernel)
    }

    /// A connected pair of stream sockets, both close-on-exec; ours is
    /// non-blocking.
    private static func socketPair() throws(VMError) -> (ours: Int32, theirs: Int32) {
        var pair: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &pair) == 0 else {
            throw VMError(.system, "socketpair for a serial port", errno: currentErrno())
        }
        _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
        return (pair[0], pair[1])
    }

    /// `path` after creating it, or nil when that is not possible (a
    /// read-only cache only costs speed).
    private static func writableDirectory(_ path: String) -> String? {
        guard (try? FileSystem.makeDirectories(path)) != nil, access(path, W_OK) == 0 else { return nil }
        return path
    }
}
