// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import ELF
import KernelPatch
import Platform
import TargetKernel

extension KernelCommand {
    /// `suture kernel reproduce`: the prepared tree's objects against the shipped image.
    struct Reproduce: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reproduce",
            abstract:
                "Compile objects of the prepared tree and compare their functions, byte for byte outside relocations, with the kernel's image.",
            discussion: """
                Proves that the tree (on the host or in a build root) compiles exactly as the distro did. \
                Addresses come from --kallsyms, else from a guest of the kernel (cached). Exits 1 when a \
                function differs or none could be compared.
                """)

        @Argument(help: ArgumentHelp("Objects, such as fs/proc/meminfo.o.", valueName: "OBJECT"))
        var objects: [String]
        @Option(name: .long, help: ArgumentHelp("The target's /proc/kallsyms or System.map.", valueName: "FILE"))
        var kallsyms: String?
        @OptionGroup var kernel: KernelOption
        @OptionGroup var cacheOption: CacheOption
        @OptionGroup var output: JSONOption

        func run() throws {
            Cleanup.installSignalHandling()
            var failed = false
            try reportingErrors(json: output.json) {
                let target = try cacheOption.resolver.resolve(kernel.kernel)
                let tree = try TreeCache(root: cacheOption.cache).prepare(target).tree
                let text: [UInt8]
                let source: String
                if let kallsyms {
                    do throws(PlatformError) { text = try FileSystem.read(kallsyms) } catch {
                        throw KernelError(.usage, "--kallsyms \(kallsyms): \(error.description)")
                    }
                    source = kallsyms
                } else {
                    (text, source) = try GuestKallsyms().kallsyms(of: target, cacheRoot: cacheOption.cache) {
                        Progress.say("suture: \($0)")
                    }
                }
                let table = try KallsymsTable(text: text, source: source)
                guard let image = RunningImage.load(target, cacheRoot: cacheOption.cache, table: table) else {
                    throw KernelError(.missingPiece, "cannot read the image of \(target.release) (\(target.image))")
                }
                let workspace = try Workspace(tree: tree)
                let built = try workspace.compile(objects)
                var reports: [ImageReproduction] = []
                for object in objects {
                    guard let path = built[try Workspace.treePath(object)] else { continue }
                    let file: ELFFile
                    do throws(ELFError) { file = try ELFFile.open(path) } catch {
                        throw KernelError(.compileFailed, error.description)
                    }
                    reports.append(ImageReproduction.compare(file, image: image, table: table))
                }
                try workspace.remove()
                let compared = reports.reduce(0) { $0 + $1.functions.count }
                let identical = reports.reduce(0) { $0 + $1.identicalCount }
                failed = compared == 0 || identical != compared
                if output.json {
                    printJSON(
                        .object([
                            ("release", .string(target.release)),
                            ("compiler", .optional(tree.compiler.host)),
                            ("buildRoot", .optional(tree.buildRoot?.path)),
                            ("compared", .int(Int64(compared))),
                            ("identical", .int(Int64(identical))),
                            ("objects", .array(reports.map(\.json))),
                        ]))
                    return
                }
                for (object, report) in zip(objects, reports) {
                    writeStandardOutput(
                        "\(object): \(report.identicalCount) of \(report.functions.count) functions identical\n")
                    for f in report.functions {
                        let detail =
                            f.identical
                            ? "identical"
                            : "\(f.differingBytes) bytes differ, first at +\(f.firstDifference ?? 0)"
                        writeStandardOutput(
                            "  \(f.name) (\(f.size) bytes, \(f.relocatedBytes) relocated, \(f.jumpLabelBytes) jump label): \(detail)\n"
                        )
                    }
                }
                writeStandardOutput(
                    "\(target.release), compiled \(tree.buildRoot.map { "in \($0.path)" } ?? "on the host") with \(tree.compiler.host ?? tree.kbuild.compiler): \(identical) of \(compared) functions identical to the image\n"
                )
            }
            if failed { throw ExitCode(1) }
        }
    }
}
