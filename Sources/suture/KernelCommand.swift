// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform
import TargetKernel

struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "List target kernels and prepare their pristine source trees.",
        subcommands: [List.self, Prepare.self, Compile.self, Objects.self])
}

/// `--cache DIR` for commands that use the tree cache.
struct CacheOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Cache folder (default: $SUTURE_CACHE, else \(CacheLocation.defaultRoot)).", valueName: "DIR"))
    var cache: String?
}

extension KernelCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Show the installed kernels, what Suture needs of each, and the default target.")

        @OptionGroup var cacheOption: CacheOption
        @OptionGroup var output: JSONOption

        func run() throws {
            try reportingErrors(json: output.json) {
                let resolver = KernelResolver()
                let kernels = resolver.installed()
                let defaultRelease = (try? resolver.defaultTarget())?.release
                let cache = TreeCache(root: cacheOption.cache)
                let trees = kernels.map { (try? cache.existing(for: $0))??.path }
                if output.json {
                    let items: [JSON] = zip(kernels, trees).map { kernel, tree in
                        guard case .object(var pairs) = kernel.json(isDefault: kernel.release == defaultRelease) else {
                            return .null
                        }
                        pairs.append(("preparedTree", .optional(tree)))
                        return .object(pairs)
                    }
                    printJSON(
                        .object([
                            ("running", .string(resolver.runningRelease)),
                            ("default", .optional(defaultRelease)),
                            ("kernels", .array(items)),
                        ]))
                    return
                }
                guard !kernels.isEmpty else {
                    writeStandardOutput("No kernel images in /boot.\n")
                    return
                }
                var lines = [["RELEASE", "PACKAGE", "LIVEPATCH", "HEADERS", "SOURCE", "TREE", "COMPILER", "NOTE"]]
                for (kernel, tree) in zip(kernels, trees) {
                    var notes: [String] = []
                    if kernel.release == defaultRelease { notes.append("default") }
                    if kernel.isRunning { notes.append("running") }
                    let source =
                        kernel.matchingSourceTarball != nil
                        ? "installed"
                        : kernel.sourceVersion.map { "\($0) (mismatch)" } ?? "not installed"
                    lines.append([
                        kernel.release, kernel.packageVersion ?? "-", kernel.livepatch ? "yes" : "no",
                        kernel.hasHeaders ? "yes" : "no", source, tree == nil ? "-" : "prepared",
                        kernel.compiler ?? "unknown", notes.joined(separator: ", "),
                    ])
                }
                writeStandardOutput(table(lines))
                writeStandardOutput(
                    "Running kernel: \(resolver.runningRelease)\(kernels.contains { $0.isRunning } ? "" : " (not installed here)")\n"
                )
            }
        }
    }

    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prepare",
            abstract: "Make the pristine, configured source tree of a kernel, once.",
            discussion: """
                The source is the linux-source package whose version equals the kernel image's: \
                the installed one, or else that exact version fetched with `apt-get download` and \
                unpacked privately. The tree is configured with the kernel's config \
                (`make olddefconfig`, `make modules_prepare`), recorded in a manifest, made \
                read-only and cached under CACHE/trees/RELEASE-CONFIGHASH. A tree that is \
                already prepared and pristine is reused at once.
                """)

        @OptionGroup var kernel: KernelOption
        @Option(
            name: .long,
            help: ArgumentHelp(
                "Use this kernel source tarball or clean folder instead of the distro package; its VERSION/PATCHLEVEL/SUBLEVEL must match the kernel.",
                valueName: "TARBALL|DIR"))
        var source: String?
        @OptionGroup var cacheOption: CacheOption
        @Flag(
            name: .long,
            help: "Build even if the host compiler differs from the one that built the kernel (warns loudly).")
        var allowCompilerMismatch = false
        @OptionGroup var output: JSONOption

        func run() throws {
            Cleanup.installSignalHandling()
            try reportingErrors(json: output.json) {
                let target = try KernelResolver().resolve(kernel.kernel)
                let outcome = try TreeCache(root: cacheOption.cache).prepare(
                    target, source: source, allowCompilerMismatch: allowCompilerMismatch)
                if output.json {
                    printJSON(outcome.json)
                } else {
                    let how = outcome.reused ? "already prepared" : "prepared in \(Int(outcome.seconds.rounded())) s"
                    writeStandardOutput(
                        "\(target.release): \(how)\n  tree:   \(outcome.tree.path)\n  source: \(outcome.tree.origin.summary)\n"
                    )
                }
            }
        }
    }

    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compile",
            abstract: "Compile objects of a prepared tree in a throwaway workspace, optionally with files replaced.")

        @Argument(
            help: ArgumentHelp(
                "Objects to build, relative to the tree's top, such as fs/proc/meminfo.o.", valueName: "OBJECT"))
        var objects: [String]
        @Option(
            name: .long,
            help: ArgumentHelp(
                "Replace a tree file with a local one (repeatable).", valueName: "TREE-PATH=FILE"))
        var replace: [String] = []
        @Option(
            name: .long, help: ArgumentHelp("Copy the objects here (default: the current folder).", valueName: "DIR"))
        var output: String = "."
        @Option(name: .long, help: ArgumentHelp("KCFLAGS for the compile.", valueName: "FLAGS"))
        var cflags: String = Kbuild.defaultCFlags.joined(separator: " ")
        @OptionGroup var kernel: KernelOption
        @OptionGroup var cacheOption: CacheOption
        @OptionGroup var jsonOption: JSONOption

        func run() throws {
            Cleanup.installSignalHandling()
            try reportingErrors(json: jsonOption.json) {
                var files: [(path: String, contents: [UInt8])] = []
                for item in replace {
                    guard let eq = item.firstIndex(of: "=") else {
                        throw KernelError(.usage, "--replace \(item): expected TREE-PATH=FILE")
                    }
                    let local = String(item[item.index(after: eq)...])
                    do throws(PlatformError) {
                        files.append((String(item[..<eq]), try FileSystem.read(local)))
                    } catch {
                        throw KernelError(.usage, "--replace \(item): \(error.description)")
                    }
                }
                let target = try KernelResolver().resolve(kernel.kernel)
                let tree = try TreeCache(root: cacheOption.cache).prepare(target).tree
                let started = Clock.now()
                let workspace = try Workspace(tree: tree, replacing: files)
                let created = Clock.now()
                let built = try workspace.compile(objects, cflags: cflags.split(separator: " ").map(String.init))
                let compiled = Clock.now()
                var copied: [(String, JSON)] = []
                for object in objects {
                    let relative = try Workspace.treePath(object)
                    guard let path = built[relative] else { continue }
                    let destination = Path.join(Path.absolute(output), relative)
                    do throws(PlatformError) {
                        try FileSystem.makeDirectories(Path.directory(of: destination))
                        try FileSystem.copyFile(path, destination)
                    } catch {
                        throw KernelError(.compileFailed, "cannot copy \(relative): \(error.description)")
                    }
                    copied.append((relative, .string(destination)))
                }
                try workspace.remove()
                let workspaceSeconds = created - started
                let compileSeconds = compiled - created
                if jsonOption.json {
                    printJSON(
                        .object([
                            ("release", .string(tree.release)),
                            ("tree", .string(tree.path)),
                            ("objects", .object(copied)),
                            ("workspaceSeconds", .double((workspaceSeconds * 1000).rounded() / 1000)),
                            ("compileSeconds", .double((compileSeconds * 1000).rounded() / 1000)),
                        ]))
                } else {
                    for (object, path) in copied { writeStandardOutput("\(object) → \(path.stringValue ?? "")\n") }
                    Progress.say("suture: workspace \(seconds(workspaceSeconds)), compile \(seconds(compileSeconds))")
                }
            }
        }
    }

    struct Objects: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "objects",
            abstract: "Find the objects that compile a .c file, including files #included into another unit.")

        @Argument(
            help: ArgumentHelp("A .c file relative to the tree's top, such as kernel/sched/rt.c.", valueName: "FILE"))
        var file: String
        @OptionGroup var kernel: KernelOption
        @OptionGroup var cacheOption: CacheOption
        @OptionGroup var output: JSONOption

        func run() throws {
            Cleanup.installSignalHandling()
            try reportingErrors(json: output.json) {
                let target = try KernelResolver().resolve(kernel.kernel)
                let tree = try TreeCache(root: cacheOption.cache).prepare(target).tree
                let objects = try tree.objects(compiling: file)
                if output.json {
                    printJSON(.object([("file", .string(file)), ("objects", .strings(objects))]))
                } else {
                    writeStandardOutput(objects.joined(separator: "\n") + "\n")
                }
            }
        }
    }
}

private func seconds(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) s"
}

/// Left-aligned columns separated by two spaces.
private func table(_ rows: [[String]]) -> String {
    var widths: [Int] = []
    for row in rows {
        for (i, cell) in row.enumerated() {
            if i >= widths.count { widths.append(0) }
            widths[i] = max(widths[i], cell.count)
        }
    }
    var out = ""
    for row in rows {
        var line = ""
        for (i, cell) in row.enumerated() {
            line += cell
            if i < row.count - 1 { line += String(repeating: " ", count: widths[i] - cell.count + 2) }
        }
        while line.hasSuffix(" ") { line.removeLast() }
        out += line + "\n"
    }
    return out
}
