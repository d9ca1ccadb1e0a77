// SPDX-License-Identifier: GPL-2.0-only

/// Text from hostile sources (a target process, a diff, a store file) made
/// safe to print on a terminal.
///
/// Control characters (C0, DEL and C1) could move the cursor, rewrite earlier
/// lines or change the terminal's settings. Each becomes a visible escape:
/// `\n`, `\t`, `\r`, `\\` or `\xNN`/`\u{NNNN}`. Printable text, including
/// non-ASCII letters, is kept.
public enum Printable {
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\\": out += "\\\\"
            default:
                let v = scalar.value
                if v < 0x20 || v == 0x7f {
                    out += "\\x" + hex(v, width: 2)
                } else if (0x80...0x9f).contains(v) || v == 0x2028 || v == 0x2029 || (0x202a...0x202e).contains(v)
                    || (0x2066...0x2069).contains(v)
                {
                    // C1 controls, line separators and bidirectional overrides.
                    out += "\\u{" + hex(v, width: 4) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// Like `escaped`, but keeps line breaks and tabs: for messages whose
    /// layout is Suture's own while parts of them are not.
    public static func terminalSafe(_ text: String) -> String {
        guard
            text.unicodeScalars.contains(where: {
                ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || $0.value == 0x7f
                    || (0x80...0x9f).contains($0.value) || (0x2028...0x202e).contains($0.value)
                    || (0x2066...0x2069).contains($0.value)
            })
        else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .map {
                $0.split(separator: "\t", omittingEmptySubsequences: false).map { escaped(String($0)) }.joined(
                    separator: "\t")
            }
            .joined(separator: "\n")
    }

    /// Whether `escaped(text)` would change `text`.
    public static func needsEscaping(_ text: String) -> Bool {
        escaped(text) != text
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
