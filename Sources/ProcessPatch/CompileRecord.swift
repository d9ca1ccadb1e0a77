// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// One compiler invocation recorded by the wrapper during a program's build:
/// the directory it ran in and its exact command line (with
/// `-ffunction-sections -fdata-sections` already added).
public struct CompileRecord: Sendable, Equatable {
    /// The real compiler (absolute path).
    public var compiler: String
    public var directory: String
    public var arguments: [String]

    public init(compiler: String, directory: String, arguments: [String]) {
        self.compiler = compiler
        self.directory = directory
        self.arguments = arguments
    }

    /// The flags the wrapper adds, so that every function and datum gets its
    /// own section.
    public static let sectionFlags = ["-ffunction-sections", "-fdata-sections"]

    /// Compiler names the wrapper stands in for.
    public static let compilerNames = ["cc", "gcc", "c++", "g++", "clang", "clang++"]

    static let sourceExtensions: Set<String> = ["c", "cc", "cpp", "cxx", "c++", "C", "i", "ii"]

    /// Options whose value is the next argument.
    static let optionsWithValue: Set<String> = [
        "-o", "-I", "-isystem", "-iquote", "-idirafter", "-include", "-imacros", "-MF", "-MT", "-MQ", "-x",
        "-D", "-U", "-L", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-T", "-e", "--param", "-aux-info",
        "-specs", "-isysroot", "--sysroot", "-target", "-arch",
    ]

    /// The source file this invocation compiles, when it compiles exactly one
    /// C or C++ file to an object (`-c`).
    public var source: String? {
        guard arguments.contains("-c") else { return nil }
        var sources: [String] = []
        var skip = false
        for a in arguments {
            if skip {
                skip = false
                continue
            }
            if CompileRecord.optionsWithValue.contains(a) {
                skip = true
                continue
            }
            if a.hasPrefix("-") { continue }
            if let dot = a.lastIndex(of: "."),
                CompileRecord.sourceExtensions.contains(String(a[a.index(after: dot)...]))
            {
                sources.append(a)
            }
        }
        guard sources.count == 1 else { return nil }
        return Path.join(directory, sources[0]).normalizedPath
    }

    /// The object file it writes (absolute).
    public var object: String? {
        guard let source else { return nil }
        for (i, a) in arguments.enumerated() {
            if a == "-o", i + 1 < arguments.count { return Path.join(directory, arguments[i + 1]).normalizedPath }
            if a.hasPrefix("-o") && a.count > 2 { return Path.join(directory, String(a.dropFirst(2))).normalizedPath }
        }
        var base = Path.base(of: source)
        if let dot = base.lastIndex(of: ".") { base = String(base[..<dot]) }
        return Path.join(directory, base + ".o").normalizedPath
    }

    public var json: JSON {
        .object([
            ("compiler", .string(compiler)), ("directory", .string(directory)), ("arguments", .strings(arguments)),
        ])
    }

    public init?(json: JSON) {
        guard let compiler = json["compiler"]?.stringValue, let directory = json["directory"]?.stringValue,
            let arguments = json["arguments"]?.arrayValue?.compactMap(\.stringValue)
        else { return nil }
        self.init(compiler: compiler, directory: directory, arguments: arguments)
    }

    // MARK: - The wrapper's side

    /// What the wrapper runs: the real compiler's arguments with the section
    /// flags added (once).
    public static func wrappedArguments(_ arguments: [String]) -> [String] {
        arguments + sectionFlags.filter { !arguments.contains($0) }
    }

    /// Writes one record into the log folder (one file per invocation, so
    /// parallel compiles never interleave).
    public static func write(_ record: CompileRecord, log: String) throws(PlatformError) {
        let name = "\(getpid())-\(Clock.monotonicNanoseconds()).json"
        try FileSystem.writeAtomically(Path.join(log, name), Array((record.json.serialized() + "\n").utf8))
    }

    /// Reads every record of a log folder, in the order they were written.
    public static func read(log: String) -> [CompileRecord] {
        let names = ((try? FileSystem.list(log)) ?? []).filter { $0.hasSuffix(".json") }
        var records: [(String, CompileRecord)] = []
        for name in names {
            guard let text = FileSystem.readTextIfPresent(Path.join(log, name)),
                let json = try? JSON.parse(text), let record = CompileRecord(json: json)
            else { continue }
            let stamp = name.split(separator: "-").last.map(String.init) ?? name
            records.append((stamp, record))
        }
        return records.sorted { ($0.0.count, $0.0) < ($1.0.count, $1.0) }.map(\.1)
    }

    /// Creates wrapper scripts for every compiler name found in `PATH`, each
    /// running `recorder` (the suture binary's hidden `process
    /// compile-record` command), and returns their folder.
    static func installWrappers(in folder: String, recorder: String, log: String) throws(PlatformError) -> [String] {
        var installed: [String] = []
        for name in compilerNames {
            guard let real = Command.which(name), let resolved = try? FileSystem.realPath(real) else { continue }
            let script = """
                #!/bin/sh
                # Written by suture process build: record this compile, then run the real compiler.
                exec \(shellQuote(recorder)) process compile-record --log \(shellQuote(log)) --compiler \(shellQuote(resolved)) -- "$@"

                """
            try FileSystem.write(Path.join(folder, name), script, mode: 0o755)
            installed.append(name)
        }
        return installed
    }
}

/// Quotes a word for `/bin/sh`.
func shellQuote(_ s: String) -> String {
    "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}

extension String {
    /// The path with `.` and `..` components resolved textually.
    var normalizedPath: String {
        var parts: [Substring] = []
        for p in split(separator: "/") {
            if p == "." || p.isEmpty { continue }
            if p == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(p)
        }
        return (hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }
}
