// SPDX-License-Identifier: GPL-2.0-only
import Glibc

/// Progress and diagnostics on stderr. Under `--json`, stdout carries only
/// the result object, so everything human goes here.
public enum Progress {
    /// Set by the CLI from `--quiet`.
    nonisolated(unsafe) public static var quiet = false

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
