// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The shared libraries and dynamic loader an executable needs, as `ldd`
/// lists them, so the executable can run inside the guest.
enum SharedLibraries {
    /// Absolute paths of the libraries and loader; empty for a static
    /// executable.
    static func of(_ executable: String) throws(VMError) -> [String] {
        let result: CommandResult
        do {
            result = try Command.run(["ldd", executable])
        } catch {
            throw VMError(.missingTool, "run ldd on \(executable)", error)
        }
        let text = result.stdoutText + result.stderrText
        if !result.termination.succeeded {
            if text.contains("not a dynamic executable") || text.contains("statically linked") { return [] }
            throw VMError(.missingTool, "ldd \(executable) failed: \(Command.tail(text))")
        }
        return try parse(result.stdoutText, executable: executable)
    }

    /// Parses ldd output: `name => /path (0x…)`, `/path (0x…)`, or
    /// `linux-vdso.so.1 (0x…)` (provided by the kernel, skipped).
    static func parse(_ text: String, executable: String) throws(VMError) -> [String] {
        var paths: [String] = []
        for line in text.split(separator: "\n") {
            let trimmed = String(line).trimmingWhitespace()
            if trimmed.contains("statically linked") { return [] }
            if trimmed.contains("=> not found") {
                throw VMError(
                    .badInput,
                    "\(executable) needs \(trimmed.split(separator: " ").first ?? ""), which is not installed")
            }
            var candidate = Substring(trimmed)
            if let arrow = candidate.firstRange(of: "=> ") { candidate = candidate[arrow.upperBound...] }
            guard candidate.hasPrefix("/") else { continue }
            let path = candidate.split(separator: " ").first.map(String.init) ?? String(candidate)
            if !paths.contains(path) { paths.append(path) }
        }
        return paths
    }
}
