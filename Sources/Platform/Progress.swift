// SPDX-License-Identifier: GPL-2.0-only
import Glibc

/// Progress and diagnostics on stderr. Under `--json`, stdout carries only
/// the result object, so everything human goes here.
public enum Progress {
    /// Set by the CLI from `--quiet`.
    nonisolated(unsafe) public static var quiet = false
    /// Set by the CLI from `--verbose`: every command Suture runs is shown.
    nonisolated(unsafe) public static var verbose = false

    /// Under `--verbose`, the command line of a command about to run, as a
    /// shell would take it.
    public static func command(_ arguments: [String], in directory: String? = nil) {
        guard verbose else { return }
        let line = arguments.map(shellQuoted).joined(separator: " ")
        warn("suture: run: " + (directory.map { "(cd \(shellQuoted($0)) && \(line))" } ?? line))
    }

    /// `word`, or `'word'` when a shell would split or expand it.
    public static func shellQuoted(_ word: String) -> String {
        let plain =
            !word.isEmpty
            && word.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || "-_./=:,+@%".utf8.contains(byte)
            }
        guard !plain else { return word }
        var quoted = "'"
        for c in word { quoted += c == "'" ? "'\\''" : String(c) }
        return quoted + "'"
    }

    /// One progress line, e.g. `suture: extracting linux-source-6.1 …`.
    public static func say(_ message: String) {
        guard !quiet else { return }
        warn(message)
    }

    /// Always printed, also when quiet.
    public static func warn(_ message: String) {
        let line = Array((message + "\n").utf8)
        try? FileSystem.writeAll(fd: 2, line, context: "stderr")
    }
}

/// Writes text to stdout unbuffered.
public func writeStandardOutput(_ text: String) {
    try? FileSystem.writeAll(fd: 1, Array(text.utf8), context: "stdout")
}
