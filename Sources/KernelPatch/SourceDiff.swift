// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// One input diff: a plain unified diff against the kernel source, `-p1`.
public struct SourceDiff: Sendable {
    public let path: String
    public let bytes: [UInt8]
    public let digest: String
    /// Tree paths the diff changes, from its `+++` lines.
    public let files: [String]

    public init(path: String) throws(BuildError) {
        self.path = path
        do {
            bytes = try RegularFile.read(path, limit: 64 << 20).bytes
        } catch {
            throw BuildError(.io, "cannot read the diff \(path): \(error.errno?.shortDescription ?? error.description)")
        }
        digest = SHA256.hex(bytes)
        try DiffNames.validate(bytes, diff: path)
        var files: [String] = []
        var oldName: String?
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("--- ") {
                oldName = SourceDiff.strip(line.dropFirst(4))
            } else if line.hasPrefix("+++ "), let old = oldName {
                let new = SourceDiff.strip(line.dropFirst(4))
                if new == "/dev/null" {
                    throw BuildError(.unsupportedChange, "\(path): deletes \(old); removing files is not supported")
                }
                if old == "/dev/null" {
                    throw BuildError(
                        .unsupportedChange,
                        "\(path): creates \(new); new files would need build-system changes, which a live patch cannot carry — add the code to an existing .c file instead"
                    )
                }
                if !files.contains(new) { files.append(new) }
                oldName = nil
            }
        }
        guard !files.isEmpty else {
            throw BuildError(.usage, "\(path): not a unified diff (no ---/+++ file headers)")
        }
        self.files = files
    }

    /// `a/fs/proc/x.c\t2024-…` → `fs/proc/x.c`.
    static func strip(_ field: Substring) -> String {
        var path = field.prefix { $0 != "\t" }
        while path.hasSuffix(" ") { path = path.dropLast() }
        if path == "/dev/null" { return "/dev/null" }
        if let slash = path.firstIndex(of: "/") { path = path[path.index(after: slash)...] }
        return String(path)
    }

    /// The diff's base name without extension, e.g. `fix-cmdline`.
    public var baseName: String {
        var name = Path.base(of: path)
        for ext in [".diff", ".patch"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)) }
        return name
    }
}

/// Applies diffs in order with the real `patch` tool to copies of the files
/// they touch, dry run first, and returns each file's patched contents.
/// No fuzz by default: a diff whose context differs was written for other
/// code, and a live patch must be built from exactly the source that is
/// running. `fuzz` (`--fuzz N`) lets a diff made for a nearby kernel apply;
/// every hunk that needed fuzz or an offset is reported.
/// The pristine tree is only read.
public enum DiffApplier {
    public struct Result: Sendable {
        /// Tree path → patched contents, for every touched file.
        public let files: [(path: String, contents: [UInt8])]
        /// Hunks that applied with fuzz or at an offset.
        public var hunks: [AppliedHunk] = []
        /// The files the patch's own diffs change: the objects compiling
        /// them are the patch's. Every file unless `--source-diff` diffs
        /// were applied first.
        public var patchFiles: [String]
        /// The original side's replaced files (`--source-diff`): the
        /// kernel's own source where it is not the prepared tree's.
        public var originals: [(path: String, contents: [UInt8])] = []
    }

    public static func apply(_ diffs: [SourceDiff], tree: PreparedTree, scratch: String, fuzz: Int = 0)
        throws(BuildError) -> Result
    {
        var paths: [String] = []
        for diff in diffs {
            for file in diff.files where !paths.contains(file) {
                guard file.hasSuffix(".c") || file.hasSuffix(".h") else {
                    throw BuildError(
                        .unsupportedChange,
                        "\(diff.path) changes \(file): only C sources and headers (.c, .h) can be live-patched; assembly, Makefiles and Kconfig cannot"
                    )
                }
                paths.append(file)
            }
        }
        var hunks: [AppliedHunk] = []
        do {
            for file in paths {
                let source = Path.join(tree.sourceDirectory, file)
                try DiffNames.requireInside(
                    root: tree.sourceDirectory, file: file, diff: diffs.first { $0.files.contains(file) }?.path ?? "")
                guard FileSystem.exists(source) else {
                    throw BuildError(.diffDoesNotApply, "\(file) does not exist in the \(tree.release) source tree")
                }
                let copy = Path.join(scratch, file)
                try FileSystem.makeDirectories(Path.directory(of: copy))
                try FileSystem.write(copy, try FileSystem.read(source), mode: 0o644)
            }
            for diff in diffs {
                let base = [
                    "patch", "-p1", "--batch", "--forward", "--fuzz=\(max(0, fuzz))", "--no-backup-if-mismatch", "-r",
                    "-", "-d", scratch,
                ]
                let dry = try Command.run(base + ["--dry-run"], input: diff.bytes)
                guard dry.termination.succeeded else {
                    throw BuildError(
                        .diffDoesNotApply,
                        "\(diff.path) does not apply to the \(tree.release) source (\(tree.packageVersion ?? "unknown version")):\n"
                            + rejections(dry.stdoutText + dry.stderrText)
                            + (fuzz == 0
                                ? "\n  (applied without fuzz; a diff made for a nearby kernel may apply with --fuzz 1 or 2)"
                                : ""))
                }
                let real = try Command.run(base, input: diff.bytes)
                guard real.termination.succeeded else {
                    throw BuildError(
                        .diffDoesNotApply,
                        "\(diff.path): patch failed after a clean dry run:\n\(Command.tail(real.stdoutText + real.stderrText))"
                    )
                }
                hunks += AppliedHunk.parse(real.stdoutText, diff: diff.path)
            }
            var result = Result(
                files: try paths.map { (path: $0, contents: try FileSystem.read(Path.join(scratch, $0))) },
                patchFiles: paths)
            result.hunks = hunks
            return result
        } catch let error as BuildError {
            throw error
        } catch {
            throw BuildError(.io, "applying diffs in \(scratch): \(error)")
        }
    }

    /// The lines of patch's output that name what failed.
    static func rejections(_ output: String) -> String {
        let interesting = output.split(separator: "\n").filter {
            $0.contains("FAILED") || $0.contains("can't find file") || $0.contains("Reversed")
                || $0.contains("checking file") || $0.contains("malformed") || $0.contains("Only garbage")
                || $0.contains("No file to patch")
        }
        let lines = interesting.isEmpty ? output.split(separator: "\n").suffix(10) : interesting[...]
        return lines.map { "  " + $0 }.joined(separator: "\n")
    }
}
