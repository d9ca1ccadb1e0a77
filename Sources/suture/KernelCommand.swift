// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform
import TargetKernel

struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "List target kernels, fetch Debian kernels into the cache, and prepare their pristine source trees.",
        subcommands: [List.self, Fetch.self, Prepare.self, Compile.self, Objects.self, Reproduce.self, Root.self])
}

/// `--cache DIR` for commands that use the tree cache.
struct CacheOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Cache folder (default: $SUTURE_CACHE, else \(CacheLocation.defaultRoot)).", valueName: "DIR"))
    var cache: String?

    /// The resolver, with fetched kernels looked up in this cache.
    var resolver: KernelResolver {
        KernelResolver(catalog: CacheLocation.kernels(CacheLocation.root(cache)))
    }
}

extension KernelCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract:
                "Show the installed and fetched kernels, what Suture needs of each, their compiler, and the default target."
        )

        @OptionGroup var cacheOption: CacheOption
        @OptionGroup var output: JSONOption

        func run() throws {
            try reportingErrors(json: output.json) {
                let resolver = cacheOption.resolver
                let kernels = resolver.installed() + resolver.fetched()
                let defaultRelease = (try? resolver.defaultTarget())?.release
                let cache = TreeCache(root: cacheOption.cache)
                let trees = kernels.map { (try? cache.existing(for: $0))??.path }
                var checks: [String: CompilerCheck] = [:]
                let roots = BuildRoots(cache: cacheOption.cache).all()
                let builds = kernels.map { kernel -> (host: Bool, text: String) in
                    guard let compiler = kernel.compiler else { return (false, "unknown compiler") }
                    let check = checks[compiler] ?? CompilerCheck.check(kernelCompiler: compiler)
                    checks[compiler] = check
                    if check.matches { return (true, "host") }
                    let package = kernel.compilerName ?? compiler
                    guard let release = BuildRoots.release(of: kernel) else {
                        return (false, "needs build root: \(package) (unknown Debian release)")
                    }
                    let name = "\(release)-\(package)"
                    if roots.contains(where: { $0.name == name }) { return (false, "build root: \(name) (ready)") }
                    return (false, "needs build root: \(name) (not ready)")
                }
                if output.json {
                    let items: [JSON] = zip(kernels, zip(trees, builds)).map { kernel, extra in
                        guard case .object(var pairs) = kernel.json(isDefault: kernel.release == defaultRelease) else {
                            return .null
                        }
                        pairs.append(("preparedTree", .optional(extra.0)))
                        pairs.append(("hostCompiler", .bool(extra.1.host)))
                        pairs.append(("build", .string(extra.1.text)))
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
                    writeStandardOutput("No kernel images in /boot, and none fetched into \(resolver.catalog).\n")
                    return
                }
                var lines = [
                    [
                        "RELEASE", "PACKAGE", "ORIGIN", "LIVEPATCH", "HEADERS", "SOURCE", "TREE", "COMPILER", "BUILD",
                        "NOTE",
                    ]
                ]
                for (kernel, (tree, build)) in zip(kernels, zip(trees, builds)) {
                    var notes: [String] = []
                    if kernel.release == defaultRelease { notes.append("default") }
                    if kernel.isRunning { notes.append("running") }
                    let source =
                        kernel.matchingSourceTarball != nil
                        ? (kernel.isFetched ? "fetched" : "installed")
                        : kernel.sourceVersion.map { "\($0) (mismatch)" }
                            ?? (kernel.isFetched ? "not fetched" : "not installed")
                    let origin =
                        kernel.isFetched
                        ? "fetched (\(kernel.catalogDirectory.flatMap { KernelCatalog.Record.suite(in: $0) } ?? "?"))"
                        : "installed"
                    lines.append([
                        kernel.release, kernel.packageVersion ?? "-", origin, kernel.livepatch ? "yes" : "no",
                        kernel.hasHeaders ? "yes" : "no", source, tree == nil ? "-" : "prepared",
                        kernel.compiler ?? "unknown", build.text, notes.joined(separator: ", "),
                    ])
                }
                writeStandardOutput(table(lines))
                writeStandardOutput(
                    "Running kernel: \(resolver.runningRelease)\(kernels.contains { $0.isRunning } ? "" : " (not installed here)")\n"
                )
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch",
            abstract: "Download a Debian kernel (image, headers, kbuild, linux-source) into the cache.",
            discussion: """
                RELEASE is what `uname -r` prints (6.12.118+deb12-amd64); a package version \
                (6.12.118-1~deb12u1) picks that version's plain amd64 flavour. The suites \
                \(KernelCatalog.suites.joined(separator: ", ")) are searched in that order, each \
                with its own apt state under CACHE/apt/SUITE: the host's apt configuration and \
                dpkg database are not touched. apt checks the archive signature and the \
                packages' SHA256. The packages are unpacked with dpkg-deb -x into \
                CACHE/kernels/RELEASE; nothing goes to /boot or dpkg. Fetching again reuses \
                what is there. Every --kernel accepts the fetched release; it is never the default.
                """)

        @Argument(help: ArgumentHelp("The kernel release or package version.", valueName: "RELEASE|VERSION"))
        var spec: String
        @Option(name: .long, help: ArgumentHelp("Search only this suite (repeatable).", valueName: "SUITE"))
        var suite: [String] = []
        @Flag(name: .long, help: "Leave out linux-source (enough for `suture vm`, not for building patches).")
        var noSource = false
        @Flag(name: .long, help: "Update the suites' package indexes even if they are less than a day old.")
        var refresh = false
        @OptionGroup var cacheOption: CacheOption
        @OptionGroup var output: JSONOption

        func run() throws {
            Cleanup.installSignalHandling()
            try reportingErrors(json: output.json) {
                let catalog = KernelCatalog(root: cacheOption.cache)
                let outcome = try catalog.fetch(
                    spec, suites: suite.isEmpty ? KernelCatalog.suites : suite, withSource: !noSource, refresh: refresh)
                if output.json {
                    printJSON(outcome.json)
                } else {
                    let how =
                        outcome.reused
                        ? "already fetched"
                        : "fetched \((outcome.downloadedBytes + 524_288) / 1_048_576) MB in \(Int(outcome.seconds.rounded())) s"
                    writeStandardOutput(
                        "\(outcome.record.release) (\(outcome.record.version), \(outcome.record.suite)): \(how)\n  folder: \(outcome.directory)\n  source: \(outcome.record.hasSource ? "yes" : "no (--no-source)")\n"
                    )
                }
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
                let target = try cacheOption.resolver.resolve(kernel.kernel)
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
                let target = try cacheOption.resolver.resolve(kernel.kernel)
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
                let target = try cacheOption.resolver.resolve(kernel.kernel)
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
