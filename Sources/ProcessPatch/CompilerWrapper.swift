// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The compiler wrapper of `suture process build`: what one compiler or `ar`
/// invocation of the program's build becomes.
///
/// A compile of one source (`cc -c a.c -o a.o`) runs as it is, with the
/// section flags added, and is recorded. A compile-and-link in one step
/// (`cc -O2 -o prog a.c b.c`) becomes one compile per source into the
/// wrapper's object folder, each recorded, then the link of those objects
/// with the same options, recorded too; `cc -c a.c b.c` becomes one compile
/// per source. Links and `ar` runs are recorded so that `process build`
/// knows which objects a binary holds. Anything the wrapper cannot follow
/// runs unchanged and is recorded with the reason, for the error message.
public struct CompilerWrapper: Sendable {
    /// What to run and what to record.
    public struct Plan: Sendable, Equatable {
        /// Argument lists for the real tool, run in order (the wrapper
        /// `exec`s the last one).
        public var runs: [[String]]
        public var records: [CompileRecord]
    }

    /// The real compiler (absolute path), recorded for recompiles.
    public var compiler: String
    /// The folder that receives the objects of split compile-and-link steps.
    public var objects: String

    public init(compiler: String, objects: String) {
        self.compiler = compiler
        self.objects = objects
    }

    static let assemblyExtensions: Set<String> = ["s", "S", "sx"]
    static let linkInputExtensions: Set<String> = ["o", "a", "so", "lo", "obj"]
    /// Options that make the driver stop before linking or only report.
    static let noLinkOptions: Set<String> = [
        "-c", "-E", "-S", "-M", "-MM", "-fsyntax-only", "-v", "-###", "--version", "-dumpversion",
        "-dumpfullversion", "-dumpmachine", "--help",
    ]
    /// Link-only options left out of the split compiles.
    static let linkOptionsWithValue: Set<String> = ["-Xlinker", "-T", "-e", "-u", "-L", "-z"]
    static let linkOptions: Set<String> = [
        "-static", "-shared", "-pie", "-no-pie", "-static-pie", "-rdynamic", "-s", "-nostdlib", "-nostartfiles",
        "-nodefaultlibs", "-static-libgcc", "-static-libstdc++", "-shared-libgcc",
    ]

    static func fileExtension(_ path: String) -> String {
        let base = Path.base(of: path)
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return "" }
        return String(base[base.index(after: dot)...])
    }

    static func isLinkInput(_ a: String) -> Bool {
        linkInputExtensions.contains(fileExtension(a)) || a.firstRange(of: ".so.") != nil
    }

    /// What to do with one compiler invocation run in `directory`.
    public func plan(_ arguments: [String], directory: String) -> Plan {
        let wrapped = CompileRecord.wrappedArguments(arguments)
        var sources: [Int] = []
        var output: String?
        var language = false
        var stdinSource = false
        var skip = false
        for (i, a) in wrapped.enumerated() {
            if skip {
                skip = false
                continue
            }
            if a == "-o", i + 1 < wrapped.count { output = wrapped[i + 1] }
            if a == "-x" { language = true }
            if CompileRecord.optionsWithValue.contains(a) || CompilerWrapper.linkOptionsWithValue.contains(a) {
                skip = true
                continue
            }
            if a == "-" { stdinSource = true }
            if a.hasPrefix("-") || a.hasPrefix("@") { continue }
            let ext = CompilerWrapper.fileExtension(a)
            if CompileRecord.sourceExtensions.contains(ext) || CompilerWrapper.assemblyExtensions.contains(ext) {
                sources.append(i)
            }
        }
        let stops = wrapped.contains { CompilerWrapper.noLinkOptions.contains($0) || $0.hasPrefix("-print-") }
        let unchanged = Plan(runs: [wrapped], records: [])
        func record(_ args: [String], _ kind: CompileRecord.Kind, note: String? = nil) -> CompileRecord {
            CompileRecord(compiler: compiler, directory: directory, arguments: args, kind: kind, note: note)
        }
        func unsupported(_ why: String) -> Plan {
            Plan(runs: [wrapped], records: [record(wrapped, .unsupported, note: why)])
        }
        let cSources = sources.filter {
            CompileRecord.sourceExtensions.contains(CompilerWrapper.fileExtension(wrapped[$0]))
        }
        if wrapped.contains(where: { $0.hasPrefix("@") }) && !stops {
            return unsupported("arguments in a response file (@FILE) are not followed")
        }
        if wrapped.contains(where: { $0 == "-flto" || $0.hasPrefix("-flto=") }) && !cSources.isEmpty {
            return unsupported("link-time optimization (-flto) is not supported")
        }
        if wrapped.contains("-c") {
            if cSources.count == 1 && sources.count == 1 {
                return Plan(runs: [wrapped], records: [record(wrapped, .compile)])
            }
            if sources.count <= 1 || output != nil || language || stdinSource {
                return cSources.isEmpty ? unchanged : unsupported("a compile the wrapper cannot split by source")
            }
            // `cc -c a.c b.c`: one compile per source.
            let others = Set(sources)
            let options = wrapped.enumerated().filter { !others.contains($0.offset) }.map(\.element)
            let runs = sources.map { options + [wrapped[$0]] }
            let records = cSources.map { record(options + [wrapped[$0]], .compile) }
            return Plan(runs: runs, records: records)
        }
        if stops { return unchanged }
        if sources.isEmpty && !stdinSource {
            // A link of objects and archives.
            let linksSomething = wrapped.contains { !$0.hasPrefix("-") && CompilerWrapper.isLinkInput($0) }
            return linksSomething ? Plan(runs: [wrapped], records: [record(wrapped, .link)]) : unchanged
        }
        if language || stdinSource {
            return unsupported("a compile-and-link step with -x or a source on standard input")
        }
        return splitCompileAndLink(wrapped, sources: sources, output: output ?? "a.out", directory: directory)
    }

    /// `cc OPTIONS -o prog a.c b.o -lm` → `cc COMPILE-OPTIONS -c a.c -o
    /// OBJ` per source, then `cc OPTIONS -o prog OBJ b.o -lm`.
    func splitCompileAndLink(_ wrapped: [String], sources: [Int], output: String, directory: String) -> Plan {
        var compileOptions: [String] = []
        var skip = false
        for (i, a) in wrapped.enumerated() {
            if skip {
                skip = false
                continue
            }
            if sources.contains(i) { continue }
            if a == "-o" || CompilerWrapper.linkOptionsWithValue.contains(a) {
                skip = true
                continue
            }
            if a.hasPrefix("-l") || a.hasPrefix("-L") || a.hasPrefix("-Wl,") || CompilerWrapper.linkOptions.contains(a)
                || (!a.hasPrefix("-") && CompilerWrapper.isLinkInput(a))
            {
                continue
            }
            // Skip the values of options that take one (-I dir, -D x …).
            if CompileRecord.optionsWithValue.contains(a) {
                compileOptions.append(a)
                if i + 1 < wrapped.count { compileOptions.append(wrapped[i + 1]) }
                skip = true
                continue
            }
            compileOptions.append(a)
        }
        var runs: [[String]] = []
        var records: [CompileRecord] = []
        var link = wrapped
        for i in sources {
            let source = wrapped[i]
            let key = "\(directory)\u{0}\(output)\u{0}\(source)"
            var base = Path.base(of: source)
            if let dot = base.lastIndex(of: ".") { base = String(base[..<dot]) }
            let object = Path.join(objects, "\(hex(fnv1a(key)))-\(base).o")
            let compile = compileOptions + ["-c", source, "-o", object]
            runs.append(compile)
            if CompileRecord.sourceExtensions.contains(CompilerWrapper.fileExtension(source)) {
                records.append(
                    CompileRecord(compiler: compiler, directory: directory, arguments: compile, kind: .compile))
            }
            link[i] = object
        }
        link = link.filter { !$0.hasPrefix("-M") }
        runs.append(link)
        records.append(CompileRecord(compiler: compiler, directory: directory, arguments: link, kind: .link))
        return Plan(runs: runs, records: records)
    }

    /// What an `ar` invocation records: the archive and the objects it
    /// adds (`r` or `q`), nothing for other operations.
    public static func archivePlan(_ arguments: [String], archiver: String, directory: String) -> Plan {
        let plain = arguments.filter { !$0.hasPrefix("--") }
        guard let key = plain.first, key.contains("r") || key.contains("q"), plain.count >= 2 else {
            return Plan(runs: [arguments], records: [])
        }
        return Plan(
            runs: [arguments],
            records: [CompileRecord(compiler: archiver, directory: directory, arguments: arguments, kind: .archive)])
    }

    // MARK: - Installing the wrappers

    /// Creates a wrapper script for every compiler (`cc`, `gcc-12`,
    /// `x86_64-linux-gnu-gcc` …) and archiver found in `PATH`, each running
    /// `recorder` (the suture binary's hidden `process compile-record`
    /// command). A compiler that is really ccache keeps running through
    /// ccache, with the compiler behind it recorded. Returns the names.
    static func install(in folder: String, recorder: String, log: String, objects: String) throws(PlatformError)
        -> [String]
    {
        var installed: [String] = []
        let path = (FileSystem.environment("PATH") ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        var names: [String] = []
        for dir in path where dir != folder {
            for name in (try? FileSystem.list(dir)) ?? [] where !names.contains(name) && isToolName(name) {
                names.append(name)
            }
        }
        for name in names {
            guard let real = Command.which(name), let resolved = try? FileSystem.realPath(real) else { continue }
            var tool = resolved
            var launcher: String?
            if Path.base(of: resolved) == "ccache" {
                // ccache finds the compiler of the same name later in PATH.
                guard let behind = realTool(name, path: path, skipping: ["ccache"]) else { continue }
                launcher = resolved
                tool = behind
            }
            let archiver = isArchiverName(name)
            var command = "exec \(shellQuote(recorder)) process compile-record --log \(shellQuote(log))"
            command += " --compiler \(shellQuote(tool)) --objects \(shellQuote(objects))"
            if let launcher { command += " --launcher \(shellQuote(launcher))" }
            if archiver { command += " --archiver" }
            let script = """
                #!/bin/sh
                # Written by suture process build: record this step, then run the real tool.
                \(command) -- "$@"

                """
            try FileSystem.write(Path.join(folder, name), script, mode: 0o755)
            installed.append(name)
        }
        return installed
    }

    /// The first `name` in `path` that is not one of `skipping` (by the
    /// base name of what it resolves to).
    static func realTool(_ name: String, path: [String], skipping: Set<String>) -> String? {
        for dir in path {
            let candidate = Path.join(dir, name)
            guard access(candidate, X_OK) == 0, let resolved = try? FileSystem.realPath(candidate) else { continue }
            if !skipping.contains(Path.base(of: resolved)) { return resolved }
        }
        return nil
    }

    /// Archivers the wrapper stands in for (`gcc-ar` is what Meson runs).
    static let archiverNames: Set<String> = ["ar", "gcc-ar"]

    /// The tool a name stands for, without a target prefix or a version:
    /// `x86_64-linux-gnu-gcc-12` → `gcc`, `clang-16` → `clang`.
    static func toolStem(_ name: String) -> String {
        var stem = Substring(name)
        if let dash = stem.lastIndex(of: "-"), !stem[stem.index(after: dash)...].isEmpty,
            stem[stem.index(after: dash)...].allSatisfy({ $0.isNumber || $0 == "." })
        {
            stem = stem[..<dash]
        }
        let prefix = "x86_64-linux-gnu-"
        return String(stem.hasPrefix(prefix) ? stem.dropFirst(prefix.count) : stem)
    }

    static func isToolName(_ name: String) -> Bool {
        let stem = toolStem(name)
        return CompileRecord.compilerNames.contains(stem) || archiverNames.contains(stem)
    }

    static func isArchiverName(_ name: String) -> Bool { archiverNames.contains(toolStem(name)) }
}

/// FNV-1a, 64 bits: a short stable name for a split compile's object.
func fnv1a(_ text: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return h
}
