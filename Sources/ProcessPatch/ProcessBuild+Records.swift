// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The recorded build of `ProcessBuild.run`, and which of its compiles made
/// the binary.
extension ProcessBuild {
    /// Suture's folder in the source tree: the wrappers (`bin`, at a path
    /// that stays the same, since CMake and Meson remember the compiler's
    /// path), this build's records (`log`) and the objects of split
    /// compile-and-link steps (`objects`).
    public static let folder = ".suture"

    /// Runs the build with the wrapper first on `PATH`; returns the records
    /// of this build merged over those of earlier builds of the tree.
    func runRecordedBuild(source: String) throws(ProcessError) -> [CompileRecord] {
        let root = Path.join(source, ProcessBuild.folder)
        let wrappers = Path.join(root, "bin")
        let log = Path.join(root, "log")
        let objects = Path.join(root, "objects")
        do {
            try FileSystem.removeTree(log)
            try FileSystem.removeTree(wrappers)
            try FileSystem.makeDirectories(wrappers)
            try FileSystem.makeDirectories(log)
            try FileSystem.makeDirectories(objects)
            let names = try CompilerWrapper.install(
                in: wrappers, recorder: options.recorder, log: log, objects: objects)
            guard names.contains(where: { !CompilerWrapper.isArchiverName($0) }) else {
                throw ProcessError(.build, "no C compiler (cc, gcc, clang …) in PATH")
            }
        } catch let error as ProcessError {
            throw error
        } catch {
            throw ProcessError(.build, "compiler wrapper: \(error)", cause: error as? any SutureError)
        }
        Progress.say("suture: building in \(source): \(options.buildCommand)")
        var environment: [String: String?] = [
            "PATH": wrappers + ":" + (FileSystem.environment("PATH") ?? "/usr/bin:/bin")
        ]
        if options.debian { environment.merge(DebianBuild.environment()) { _, new in new } }
        let result: CommandResult
        do {
            result = try Command.run(
                ["/bin/sh", "-c", options.buildCommand],
                environment: Command.environment(environment),
                workingDirectory: source, capture: true,
                onOutput: { _, chunk in
                    if !Progress.quiet { try? FileSystem.writeAll(fd: 2, chunk, context: "stderr") }
                })
        } catch {
            throw error.process(.build, "run the build")
        }
        guard result.termination.succeeded else {
            throw ProcessError(.build, "the build failed (\(result.termination)): \(Command.tail(result.stderrText))")
        }
        var records = CompileRecord.read(log: log)
        // Earlier records of steps this build did not run again.
        let saved = Path.join(source, ProcessBuild.recordFile)
        if let text = FileSystem.readTextIfPresent(saved), let json = try? JSON.parse(text) {
            let keys = Set(records.compactMap(\.key))
            let earlier = (json["records"]?.arrayValue ?? []).compactMap(CompileRecord.init(json:))
            records = earlier.filter { $0.key.map { !keys.contains($0) } ?? false } + records
        }
        let kept = records.filter { $0.key != nil }
        try? FileSystem.writeAtomically(
            saved,
            Array((JSON.object([("records", .array(kept.map(\.json)))]).serialized(pretty: true) + "\n").utf8))
        guard records.contains(where: { $0.kind == .compile && $0.object != nil }) else {
            let unsupported = records.filter { $0.kind == .unsupported }.prefix(5)
            throw ProcessError(
                .build,
                "the build compiled no object and no earlier record exists; clean the tree (e.g. make clean) so that every object is compiled through the wrapper"
                    + unsupported.map { "\n  not followed (\($0.note ?? "")): \($0.commandLine)" }.joined())
        }
        return records
    }

    /// The compiles of the objects linked into `binary` (all of them when
    /// no recorded link wrote it), one per object (the last), whose source
    /// still exists.
    static func compiles(of binary: String, records: [CompileRecord]) -> [CompileRecord] {
        let linked = LinkedObjects.of(binary, records: records)
        var byObject: [String: Int] = [:]
        var result: [CompileRecord] = []
        for r in records where r.kind == .compile {
            guard let object = r.object, let src = r.source, FileSystem.exists(src) else { continue }
            if let linked, !linked.contains(LinkedObjects.canonical(object)) { continue }
            if let at = byObject[object] {
                result[at] = r
            } else {
                byObject[object] = result.count
                result.append(r)
            }
        }
        return result
    }

    /// Copies the object the build compiled to `destination`; when the build
    /// removed it after archiving it (make's `lib.a(x.o)` rules delete such
    /// intermediate objects), takes the member out of the recorded archive.
    static func saveOriginal(
        _ object: String, compiledFrom source: String, records: [CompileRecord], to destination: String
    )
        throws(ProcessError)
    {
        if FileSystem.exists(object) {
            do { try FileSystem.copyFile(object, destination) } catch { throw error.process(.build, "copy \(object)") }
            return
        }
        let wanted = LinkedObjects.canonical(object)
        for r in records.reversed() {
            guard let (archive, members) = r.archiveMembers, FileSystem.exists(archive),
                members.contains(where: { LinkedObjects.canonical($0) == wanted })
            else { continue }
            do {
                let result = try Command.run([r.compiler, "p", archive, Path.base(of: object)])
                guard result.termination.succeeded, !result.stdout.isEmpty else { continue }
                try FileSystem.write(destination, result.stdout)
                return
            } catch {
                continue
            }
        }
        throw ProcessError(
            .build,
            "\(object): the build removed the object it compiled from \(source), and no recorded archive holds it")
    }

    /// Why a touched source has no compile to redo: a step the wrapper could
    /// not follow, an object that is not in the binary, or no compile at all.
    static func notCompiled(_ file: String, into binary: String, records: [CompileRecord], source: String)
        -> ProcessError
    {
        let path = Path.join(source, file)
        let named = records.filter { r in
            r.arguments.contains { !$0.hasPrefix("-") && Path.join(r.directory, $0).normalizedPath == path }
        }
        if let r = named.last(where: { $0.kind == .unsupported }) {
            return ProcessError(
                .build,
                "\(file): the build compiled it in a step suture cannot follow (\(r.note ?? "")):\n  \(r.commandLine)")
        }
        if let r = named.last(where: { $0.kind == .compile }) {
            return ProcessError(
                .build,
                "\(file): the build compiled it (\(r.commandLine)), but its object is not linked into \(binary)")
        }
        return ProcessError(
            .build,
            "\(file): the build compiled no object from it, so it cannot be patched (a new file, a file the build does not compile, or a compiler the wrapper does not stand in for)"
        )
    }
}

extension CompileRecord {
    /// What a later record of the same step replaces: the object a compile
    /// writes, the file a link writes, the archive and its members; none
    /// for the rest.
    var key: String? {
        switch kind {
        case .compile: return object.map { "compile:\($0)" }
        case .link: return linkOutput.map { "link:\($0)" }
        case .archive: return archiveMembers.map { "archive:\($0.archive):\($0.objects.joined(separator: ":"))" }
        case .unsupported: return nil
        }
    }
}
