// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import KernelPatch
import Platform
import TargetKernel
import VM

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Build a live patch from a diff and try it on the target kernel in a throwaway VM.",
        discussion: """
            Writes an example diff that makes /proc/version say the kernel is live-patched, builds it
            with `suture build` for the target Debian kernel, boots that kernel with `suture vm`, and
            shows /proc/version before, after `suture load` (with `suture status`), and after
            `suture unload`. Nothing is loaded into the host kernel.
            """)

    @OptionGroup var kernel: KernelOption

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Keep the diff and the module in this folder (default: a temporary one).", valueName: "DIR"))
    var output: String?

    func run() throws {
        try reportingErrors(json: false) {
            Cleanup.installSignalHandling()
            let started = Clock.now()
            func step(_ title: String) { writeStandardOutput("\n== \(title)\n") }
            func took(_ since: Double) { writeStandardOutput("   (\(String(format1: Clock.now() - since)) s)\n") }

            let target = try KernelResolver().resolve(kernel.kernel)
            let scratch = try TemporaryDirectory(prefix: "suture-demo")
            defer { scratch.remove() }
            let folder = output ?? scratch.path
            try FileSystem.makeDirectories(folder)

            step("1. Build a live patch for \(target.release) from a plain diff")
            var t = Clock.now()
            let tree = try TreeCache().prepare(target).tree
            let diffPath = Path.join(folder, "suture-demo.diff")
            writeStandardOutput(try DemoPatch.write(tree: tree, to: diffPath))
            var options = BuildOptions(diffs: [diffPath], kernel: target)
            options.name = "suture_demo"
            options.kallsymsSource = GuestKallsyms()
            options.outputDirectory = folder
            let outcome = try KernelBuild.run(options) { Progress.say("   \($0)") }
            writeStandardOutput(
                "   built \(outcome.modulePath): redirects \(outcome.redirects.map(\.oldName).joined(separator: ", ")), "
                    + "\(outcome.klpRelocations) klp relocation(s)\n")
            took(t)

            step("2. Boot \(target.release) in a throwaway QEMU guest")
            t = Clock.now()
            var configuration = VMConfiguration(kernel: target)
            configuration.files = [GuestFile(hostPath: outcome.modulePath, guestPath: "/root/livepatch-suture_demo.ko")]
            let vm = try VirtualMachine(configuration)
            defer { vm.shutdown() }
            writeStandardOutput("   booted with \(vm.accelerator) in \(String(format1: vm.bootSeconds)) s\n")
            took(t)

            func guest(_ command: String) throws {
                writeStandardOutput("   $ \(command)\n")
                let run = try vm.run(command, timeout: 120) { _, bytes in
                    writeStandardOutput(
                        String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                            .map { $0.isEmpty ? "" : "   " + $0 }.joined(separator: "\n"))
                }
                guard run.exitStatus == 0 else {
                    throw BuildError(
                        .linkFailed,
                        "the guest command `\(command)` failed (status \(run.exitStatus))\n\(run.kernelLog)")
                }
            }
            step("3. Before: the running kernel")
            t = Clock.now()
            try guest("cat /proc/version")
            took(t)
            step("4. suture load, then the same file and suture status")
            t = Clock.now()
            try guest("suture load /root/livepatch-suture_demo.ko")
            try guest("cat /proc/version")
            try guest("suture status")
            took(t)
            step("5. suture unload: the original code is back")
            t = Clock.now()
            try guest("suture unload livepatch_suture_demo")
            try guest("cat /proc/version")
            took(t)
            writeStandardOutput(
                """

                What happened: suture compiled only fs/proc/version.c, before and after the diff, with the
                distro's own source, config and compiler, kept the one function that changed, and linked it
                into a livepatch module. The kernel's livepatch core redirected version_proc_show to the new
                code while the system ran, and back again on unload, without a reboot.
                Total \(String(format1: Clock.now() - started)) s.

                """)
        }
    }
}
