// SPDX-License-Identifier: GPL-2.0-only

/// What went wrong in the guest kernel, from least to most severe.
public enum KernelProblem: String, Sendable, Comparable, CaseIterable {
    /// `WARN()` fired (taint W) or a "WARNING:" report.
    case warning
    /// An oops or `BUG()` (taint D), the kernel survived.
    case oops
    /// The kernel panicked; the guest is gone.
    case panic

    private var severity: Int {
        switch self {
        case .warning: return 0
        case .oops: return 1
        case .panic: return 2
        }
    }

    public static func < (a: KernelProblem, b: KernelProblem) -> Bool { a.severity < b.severity }
}

/// Reading the guest kernel's log and taint state.
public enum KernelLog {
    /// `TAINT_DIE` ('D'): the kernel oopsed (`include/linux/panic.h`).
    public static let taintDie: UInt64 = 1 << 7
    /// `TAINT_WARN` ('W'): a `WARN()` fired.
    public static let taintWarn: UInt64 = 1 << 9

    /// The worst problem shown by log text and by taint bits that were set
    /// between `taintBefore` and `taintAfter`.
    public static func problem(in log: String, taintBefore: UInt64 = 0, taintAfter: UInt64 = 0) -> KernelProblem? {
        var worst: KernelProblem? = nil
        func note(_ p: KernelProblem) { if worst == nil || worst! < p { worst = p } }
        let added = taintAfter & ~taintBefore
        if added & taintDie != 0 { note(.oops) }
        if added & taintWarn != 0 { note(.warning) }
        for line in log.split(separator: "\n") {
            if line.contains("Kernel panic - not syncing") {
                note(.panic)
            } else if isOopsLine(line) {
                note(.oops)
            } else if line.contains("WARNING: CPU:") || line.contains("------------[ cut here ]------------") {
                note(.warning)
            }
        }
        return worst
    }

    /// The first line of an oops report on x86: `Oops: 0002 [#1] …`,
    /// `BUG: kernel NULL pointer dereference`, `kernel BUG at …`,
    /// `general protection fault …`, `invalid opcode: 0000 [#1]`.
    static func isOopsLine(_ line: Substring) -> Bool {
        line.contains("Oops: ") || line.contains("BUG: ") || line.contains("kernel BUG at ")
            || line.contains("general protection fault") || line.contains("invalid opcode: ")
    }

    /// One `/dev/kmsg` record (`prio,seq,usec,flags;text`, then
    /// ` KEY=value` continuation lines) as a dmesg line
    /// `[   12.345678] text`, with its log level (0 emerg … 7 debug).
    public static func format(record: String) -> (level: Int, line: String)? {
        guard let semicolon = record.firstIndex(of: ";") else { return nil }
        let fields = record[..<semicolon].split(separator: ",")
        guard fields.count >= 3, let priority = Int(fields[0]), let usec = UInt64(fields[2]) else { return nil }
        var text = record[record.index(after: semicolon)...]
        if let newline = text.firstIndex(of: "\n") { text = text[..<newline] }
        let seconds = String(usec / 1_000_000)
        let micros = String(usec % 1_000_000)
        let stamp =
            String(repeating: " ", count: max(0, 5 - seconds.count)) + seconds + "."
            + String(repeating: "0", count: 6 - micros.count) + micros
        return (priority & 7, "[\(stamp)] \(text)")
    }

    /// Serial console bytes as text: `\r\n` → `\n`, stray `\r` dropped.
    public static func consoleText<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for b in bytes where b != 13 { out.append(b) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Taint flags as the kernel prints them, e.g. `D W O E` for 0x3280.
    public static func describe(taint: UInt64) -> String {
        let letters: [(Int, Character)] = [
            (0, "P"), (1, "F"), (2, "S"), (3, "R"), (4, "M"), (5, "B"), (6, "U"), (7, "D"), (8, "A"),
            (9, "W"), (10, "C"), (11, "I"), (12, "O"), (13, "E"), (14, "L"), (15, "K"), (16, "X"), (17, "T"),
        ]
        return letters.filter { taint & (1 << UInt64($0.0)) != 0 }.map { String($0.1) }.joined(separator: " ")
    }
}
