// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// The example patch of `suture demo`: `/proc/version` gains a line saying
/// the kernel is live-patched. It is written as a plain unified diff against
/// the target's own `fs/proc/version.c`, so it applies to whichever Debian
/// kernel is the target.
public enum DemoPatch {
    public static let file = "fs/proc/version.c"
    public static let marker = "(live-patched by suture)"
    static let anchor = "\t\tutsname()->version);\n\treturn 0;\n}"
    static let replacement = "\t\tutsname()->version);\n\tseq_puts(m, \"\(marker)\\n\");\n\treturn 0;\n}"

    /// Writes the diff to `path` and returns its text.
    public static func write(tree: PreparedTree, to path: String) throws(BuildError) -> String {
        let original: String
        do {
            original = try FileSystem.readText(Path.join(tree.sourceDirectory, file))
        } catch {
            throw BuildError(.io, "reading \(file) of the \(tree.release) source: \(error.description)", cause: error)
        }
        guard let range = original.firstRange(of: anchor) else {
            throw BuildError(
                .unsupportedChange,
                "the demo's anchor is not in \(file) of \(tree.release); this kernel's version_proc_show looks different"
            )
        }
        var patched = original
        patched.replaceSubrange(range, with: replacement)
        let diff: String
        do {
            let scratch = try TemporaryDirectory(prefix: "suture-demo-diff")
            defer { scratch.remove() }
            let a = Path.join(scratch.path, "a")
            let b = Path.join(scratch.path, "b")
            try FileSystem.write(a, original)
            try FileSystem.write(b, patched)
            let result = try Command.run(["diff", "-u", "--label", "a/\(file)", "--label", "b/\(file)", a, b])
            diff = result.stdoutText
            try FileSystem.write(path, diff)
        } catch {
            throw BuildError(.io, "writing the demo diff: \(error.description)", cause: error)
        }
        return diff
    }
}
