// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A hunk that `patch` applied somewhere other than where the diff says,
/// or only after ignoring context lines (`--fuzz N`).
public struct AppliedHunk: Sendable, Equatable {
    public let diff: String
    public let file: String
    public let hunk: Int
    /// The line where it applied.
    public let line: Int
    /// Context lines ignored (0 without fuzz).
    public let fuzz: Int
    /// Lines away from where the diff placed it.
    public let offset: Int

    public init(diff: String, file: String, hunk: Int, line: Int, fuzz: Int, offset: Int) {
        self.diff = diff
        self.file = file
        self.hunk = hunk
        self.line = line
        self.fuzz = fuzz
        self.offset = offset
    }

    public var description: String {
        var text = "\(Path.base(of: diff)): \(file) hunk #\(hunk) applied at line \(line)"
        var how: [String] = []
        if fuzz > 0 { how.append("with fuzz \(fuzz)") }
        if offset != 0 { how.append("offset \(offset > 0 ? "+" : "")\(offset) line\(abs(offset) == 1 ? "" : "s")") }
        if !how.isEmpty { text += " (\(how.joined(separator: ", ")))" }
        return text
    }

    public var json: JSON {
        .object([
            ("diff", .string(diff)), ("file", .string(file)), ("hunk", .integer(hunk)), ("line", .integer(line)),
            ("fuzz", .integer(fuzz)), ("offset", .integer(offset)),
        ])
    }

    /// The hunks of `patch`'s output that needed fuzz or an offset:
    /// `patching file F` then `Hunk #2 succeeded at 10 with fuzz 1 (offset -6 lines).`
    public static func parse(_ output: String, diff: String) -> [AppliedHunk] {
        var result: [AppliedHunk] = []
        var file = "?"
        for raw in output.split(separator: "\n") {
            let line = String(raw).trimmingWhitespace()
            for prefix in ["patching file ", "checking file "] where line.hasPrefix(prefix) {
                file = String(line.dropFirst(prefix.count))
                if file.hasPrefix("'"), file.hasSuffix("'"), file.count >= 2 {
                    file = String(file.dropFirst().dropLast())
                }
            }
            guard line.hasPrefix("Hunk #"), line.contains(" succeeded at ") else { continue }
            let words = line.split(separator: " ")
            func number(after word: String) -> Int? {
                guard let i = words.firstIndex(where: { $0 == word }), i + 1 < words.count else { return nil }
                return Int(words[i + 1].filter { $0 == "-" || $0.isNumber })
            }
            guard let hunk = Int(words[1].dropFirst().filter { $0.isNumber }), let at = number(after: "at") else {
                continue
            }
            let fuzz = number(after: "fuzz") ?? 0
            let offset = number(after: "(offset") ?? 0
            result.append(AppliedHunk(diff: diff, file: file, hunk: hunk, line: at, fuzz: fuzz, offset: offset))
        }
        return result
    }
}
