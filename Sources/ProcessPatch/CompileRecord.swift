// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// One invocation recorded by the wrapper during a program's build: the
/// directory it ran in and its exact command line (with `-ffunction-sections
/// -fdata-sections` already added to compiles). Most are compiles of one
/// source to one object; the wrapper also records links (which objects and
/// archives make a binary), archives (`ar`: which objects an archive holds),
/// and invocations it could not follow, with why.
public struct CompileRecord: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case compile, link, archive, unsupported
    }

    public var kind: Kind
    /// The real tool (absolute path).
    public var compiler: String
    public var directory: String
    public var arguments: [String]
    /// Why an `unsupported` invocation could not be followed.
    public var note: String?

    public init(
        compiler: String, directory: String, arguments: [String], kind: Kind = .compile, note: String? = nil
    ) {
        self.kind = kind
        self.compiler = compiler
        self.directory = directory
        self.arguments = arguments
        self.note = note
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
        guard kind == .compile, arguments.contains("-c") else { return nil }
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
        var fields: [(String, JSON)] = [
            ("kind", .string(kind.rawValue)), ("compiler", .string(compiler)), ("directory", .string(directory)),
            ("arguments", .strings(arguments)),
        ]
        if let note { fields.append(("note", .string(note))) }
        return .object(fields)
    }

    public init?(json: JSON) {
        guard let compiler = json["compiler"]?.stringValue, let directory = json["directory"]?.stringValue,
            let arguments = json["arguments"]?.arrayValue?.compactMap(\.stringValue)
        else { return nil }
        let kind = json["kind"]?.stringValue.flatMap(Kind.init(rawValue:)) ?? .compile
        self.init(
            compiler: compiler, directory: directory, arguments: arguments, kind: kind, note: json["note"]?.stringValue)
    }

    /// The command line as a shell would take it, for messages.
    public var commandLine: String {
        ([Path.base(of: compiler)] + arguments).map { $0.contains(" ") ? shellQuote($0) : $0 }.joined(separator: " ")
    }

    // MARK: - The wrapper's side

    /// What the wrapper runs: the real compiler's arguments with the section
    /// flags added (once).
    public static func wrappedArguments(_ arguments: [String]) -> [String] {
        arguments + sectionFlags.filter { !arguments.contains($0) }
    }

    /// Writes the records of one invocation into the log folder, as one
    /// file of its own (named by time, then process), so parallel compiles
    /// never interleave.
    public static func write(_ records: [CompileRecord], log: String) throws(PlatformError) {
        guard !records.isEmpty else { return }
        let stamp = String(Clock.monotonicNanoseconds())
        let name = String(repeating: "0", count: max(0, 20 - stamp.count)) + stamp + "-\(getpid()).json"
        let json = JSON.object([("records", .array(records.map(\.json)))])
        try FileSystem.writeAtomically(Path.join(log, name), Array((json.serialized() + "\n").utf8))
    }

    /// Reads every record of a log folder, in the order they were written.
    public static func read(log: String) -> [CompileRecord] {
        let names = ((try? FileSystem.list(log)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        var records: [CompileRecord] = []
        for name in names {
            guard let text = FileSystem.readTextIfPresent(Path.join(log, name)), let json = try? JSON.parse(text)
            else { continue }
            if let list = json["records"]?.arrayValue {
                records += list.compactMap(CompileRecord.init(json:))
            } else if let record = CompileRecord(json: json) {
                records.append(record)
            }
        }
        return records
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
