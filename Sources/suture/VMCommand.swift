// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
import Platform
import TargetKernel
import VM

extension Accelerator: ExpressibleByArgument {}

struct VMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract: "Run a command in a throwaway QEMU guest of the target kernel.",
        discussion: """
            COMMAND runs as root with /bin/sh -c in a busybox guest that carries
            this suture binary. A single argument is a shell command line
            ('cat /proc/x | wc -l'); several arguments are one command and its
            arguments, passed unchanged (sh -c 'a; b'). Its stdout and stderr arrive unchanged; the kernel
            console stays apart.

            Exit status: the command's, or 124 when --timeout killed it, 125 when
            the VM or suture failed, 126 when the guest kernel oopsed, panicked or
            warned (the kernel log is shown then).

            Examples:
              suture vm -- cat /proc/version
              suture vm --modules xfs --add p.ko:/root/p.ko -- insmod /root/p.ko
              suture vm --kallsyms > kallsyms.txt
              suture vm --shell

            With --image debian the guest is a real Debian system of the
            kernel's release (systemd, sshd, python3; made once with
            mmdebstrap and cached), reached by ssh; COMMAND runs as root over
            ssh. --keep NAME leaves it running and prints how to log in;
            --stop NAME powers it off; --list shows the kept guests.
              suture vm --image debian -- systemctl is-system-running
              suture vm --image debian --keep web1 --json
              suture vm --stop web1
            """)

    @Option(
        help: ArgumentHelp(
            "The guest's root: a busybox initramfs, or a Debian system with systemd and sshd.",
            valueName: "busybox|debian"))
    var image: GuestImageKind = .busybox

    @Option(
        help: ArgumentHelp(
            "With --image debian: boot a guest named NAME, return once sshd answers and leave it running.",
            valueName: "NAME"))
    var keep: String?

    @Option(help: ArgumentHelp("Power off the kept Debian guest NAME and remove its disk.", valueName: "NAME"))
    var stop: String?

    @Flag(help: "With --stop: keep the guest's disk, so that the next --keep NAME boots it again.")
    var keepDisk = false

    @Flag(help: "List the kept Debian guests.")
    var list = false

    @Option(
        help: ArgumentHelp(
            "With --image debian: one more kernel command-line parameter, for every boot of the guest (repeatable).",
            valueName: "PARAMETER"))
    var append: [String] = []

    @OptionGroup var kernel: KernelOption

    @Option(
        name: .customLong("add"),
        help: ArgumentHelp(
            "Put a host file or directory into the guest, at GUEST_PATH or at its own absolute path (repeatable).",
            valueName: "FILE[:GUEST_PATH]"))
    var add: [String] = []

    @Option(
        help: ArgumentHelp(
            "Carry these modules of the target release and their dependencies, for modprobe.",
            valueName: "NAME,..."))
    var modules: [String] = []

    @Option(help: ArgumentHelp("Kill the command after this many seconds (exit 124).", valueName: "SECONDS"))
    var timeout: Double?

    @Option(help: ArgumentHelp("Guest memory (default: 512, 1024 for --image debian).", valueName: "MB"))
    var memory: Int?

    @Option(
        help: ArgumentHelp("Force an accelerator (default: KVM when it works here, else TCG).", valueName: "kvm|tcg"))
    var accel: Accelerator?

    @Flag(
        help:
            "Boot through UEFI firmware (ovmf) with Secure Boot on: the firmware verifies the distribution's signed kernel, which then locks itself down (lockdown integrity) and loads only signed modules."
    )
    var secureBoot = false

    @Option(
        help: ArgumentHelp(
            "With --secure-boot: trust this certificate (PEM or DER) as a machine owner key, as if enrolled with mokutil.",
            valueName: "CERT"))
    var mok: String?

    @Flag(help: "Print the guest's /proc/kallsyms as root sees it (cached per release).")
    var kallsyms = false

    @Flag(help: "Open an interactive shell on the guest; exit powers it off.")
    var shell = false

    @OptionGroup var output: JSONOption

    @Argument(
        parsing: .postTerminator,
        help: ArgumentHelp("The command line to run in the guest, after --.", valueName: "COMMAND"))
    var command: [String] = []

    func validate() throws {
        if image == .debian || stop != nil || list {
            try validateDebian()
            return
        }
        if keep != nil || keepDisk || !append.isEmpty {
            throw ValidationError("--keep, --keep-disk and --append need --image debian")
        }
        let modes = (kallsyms ? 1 : 0) + (shell ? 1 : 0) + (command.isEmpty ? 0 : 1)
        if modes != 1 {
            throw ValidationError("give exactly one of: -- COMMAND..., --kallsyms, --shell")
        }
        if shell && output.json { throw ValidationError("--shell has no --json output") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if let memory, memory < 128 { throw ValidationError("--memory must be at least 128 (MB)") }
        if mok != nil && !secureBoot { throw ValidationError("--mok needs --secure-boot") }
    }

    func run() throws {
        Cleanup.installSignalHandling()
        var status: Int32 = 0
        try reportingErrors(json: output.json) {
            if image == .debian || stop != nil || list {
                status = try runDebian()
                return
            }
            let configuration = try makeConfiguration()
            if kallsyms {
                try printKallsyms(configuration)
            } else if shell {
                status = try runShell(configuration)
            } else {
                status = try runCommand(configuration)
            }
        }
        if status != 0 { throw ExitCode(status) }
    }

    private func makeConfiguration() throws(VMError) -> VMConfiguration {
        let release: KernelRelease
        do {
            release = try KernelResolver().resolve(kernel.kernel)
        } catch {
            throw VMError(error.exitStatus == 64 ? .usage : .badInput, error.description)
        }
        var configuration = VMConfiguration(kernel: release)
        configuration.files = try add.map { spec throws(VMError) in try GuestFile.parse(spec) }
        configuration.modules = modules.flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
        configuration.memoryMB = memory ?? 512
        configuration.accelerator = accel
        configuration.secureBoot = secureBoot
        configuration.machineOwnerKey = mok.map(Path.absolute)
        return configuration
    }

    static func shellQuoted(_ word: String) -> String {
        let safe =
            !word.isEmpty
            && word.unicodeScalars.allSatisfy {
                ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value | 0x20 >= 0x61 && $0.value | 0x20 <= 0x7a)
                    || "_@%+=:,./-".unicodeScalars.contains($0)
            }
        if safe { return word }
        var quoted = "'"
        for c in word { quoted += c == "'" ? "'\\''" : String(c) }
        return quoted + "'"
    }

    private func runCommand(_ configuration: VMConfiguration) throws(VMError) -> Int32 {
        // One argument is a shell command line; several are an argv, quoted
        // so that `suture vm -- sh -c 'a; b'` means what it says.
        let commandLine = command.count == 1 ? command[0] : command.map(Self.shellQuoted).joined(separator: " ")
        // The command's stderr must arrive unchanged: progress lines only
        // for a person watching a terminal.
        let chatty = isatty(2) == 1
        if chatty { Progress.say("suture: booting \(configuration.kernel.release) …") }
        let vm = try VirtualMachine(configuration)
        defer { vm.shutdown() }
        if chatty {
            Progress.say("suture: guest up in \(formatSeconds(vm.bootSeconds)) s (\(vm.accelerator.rawValue))")
        }
        let json = output.json
        var result = try vm.run(commandLine, timeout: timeout) { stream, bytes in
            guard !json else { return }
            try? FileSystem.writeAll(fd: stream == .stdout ? 1 : 2, bytes, context: "output")
        }
        vm.shutdown()
        // A kernel that already warned while booting counts as well.
        if let bootProblem = vm.bootProblem, result.kernelProblem.map({ $0 < bootProblem }) ?? true {
            result.kernelProblem = bootProblem
            result.kernelLog = vm.bootLog + result.kernelLog
        }
        if json {
            printJSON(
                .object([
                    ("exitStatus", .integer(result.exitStatus)),
                    ("stdout", .string(result.stdoutText)),
                    ("stderr", .string(result.stderrText)),
                    ("kernelLog", .string(result.kernelLog)),
                    ("kernelProblem", result.kernelProblem.map { .string($0.rawValue) } ?? .null),
                    ("bootSeconds", .double(rounded(vm.bootSeconds))),
                    ("runSeconds", .double(rounded(result.seconds))),
                ]))
        } else if let problem = result.kernelProblem {
            Progress.warn("suture: guest kernel \(problem.rawValue) during the command; kernel log:")
            Progress.warn(result.kernelLog.trimmingWhitespace())
        } else if result.timedOut {
            Progress.warn("suture: the command did not finish within \(formatSeconds(timeout ?? 0)) s and was killed")
        }
        return result.exitStatus
    }

    private func printKallsyms(_ configuration: VMConfiguration) throws(VMError) {
        let (text, cached) = try Kallsyms.load(configuration)
        let path = Kallsyms.cachePath(release: configuration.kernel.release, cacheRoot: configuration.cacheRoot)
        if output.json {
            let lines = text.reduce(0) { $1 == 10 ? $0 + 1 : $0 }
            printJSON(
                .object([
                    ("release", .string(configuration.kernel.release)),
                    ("cached", .bool(cached)),
                    ("cacheFile", .string(path)),
                    ("symbols", .integer(lines)),
                ]))
        } else {
            try? FileSystem.writeAll(fd: 1, text, context: "stdout")
        }
    }

    private func runShell(_ configuration: VMConfiguration) throws(VMError) -> Int32 {
        Progress.say("suture: booting \(configuration.kernel.release); the shell's exit powers the guest off")
        let outcome = try GuestShell.run(configuration)
        if let problem = outcome.kernelProblem {
            Progress.warn("suture: guest kernel \(problem.rawValue) during the session; console:")
            Progress.warn(outcome.console.trimmingWhitespace())
            return 126
        }
        return 0
    }
}

private func rounded(_ seconds: Double) -> Double {
    (seconds * 1000).rounded() / 1000
}

private func formatSeconds(_ seconds: Double) -> String {
    let tenths = Int((seconds * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
