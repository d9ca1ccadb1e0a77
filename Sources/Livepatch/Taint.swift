// SPDX-License-Identifier: GPL-2.0-only

/// The kernel's taint mask, `/proc/sys/kernel/tainted`. Taint flags are
/// never cleared, so a failed patch attempt leaves its marks; Suture reports them.
public struct KernelTaint: Sendable, Equatable {
    public var mask: UInt64

    public init(mask: UInt64) { self.mask = mask }

    /// One taint bit: its letter in `print_tainted` and what it means.
    public struct Flag: Sendable, Equatable {
        public var bit: Int
        public var letter: Character
        public var meaning: String
    }

    /// The bits of `taint_flags` in kernel/panic.c, in bit order.
    public static let flags: [Flag] = [
        Flag(bit: 0, letter: "P", meaning: "proprietary module"),
        Flag(bit: 1, letter: "F", meaning: "module force-loaded"),
        Flag(bit: 2, letter: "S", meaning: "CPU out of specification"),
        Flag(bit: 3, letter: "R", meaning: "module force-unloaded"),
        Flag(bit: 4, letter: "M", meaning: "machine check"),
        Flag(bit: 5, letter: "B", meaning: "bad page"),
        Flag(bit: 6, letter: "U", meaning: "tainted on user request"),
        Flag(bit: 7, letter: "D", meaning: "kernel died (oops)"),
        Flag(bit: 8, letter: "A", meaning: "ACPI table overridden"),
        Flag(bit: 9, letter: "W", meaning: "kernel warning"),
        Flag(bit: 10, letter: "C", meaning: "staging driver"),
        Flag(bit: 11, letter: "I", meaning: "firmware bug workaround"),
        Flag(bit: 12, letter: "O", meaning: "out-of-tree module"),
        Flag(bit: 13, letter: "E", meaning: "unsigned module"),
        Flag(bit: 14, letter: "L", meaning: "soft lockup"),
        Flag(bit: 15, letter: "K", meaning: "live patched"),
        Flag(bit: 16, letter: "X", meaning: "auxiliary taint"),
        Flag(bit: 17, letter: "T", meaning: "struct layout randomized"),
        Flag(bit: 18, letter: "N", meaning: "test module"),
    ]

    /// Reads the mask; nil when the file is missing or garbled.
    public static func read(_ tree: KernelTree) -> KernelTaint? {
        guard let text = KernelFiles.read(tree.tainted), let mask = UInt64(text) else { return nil }
        return KernelTaint(mask: mask)
    }

    /// The set flags, in bit order; bits without a letter are shown as `?`.
    public var setFlags: [Flag] {
        (0..<64).compactMap { bit in
            guard mask & (1 << UInt64(bit)) != 0 else { return nil }
            return Self.flags.first { $0.bit == bit } ?? Flag(bit: bit, letter: "?", meaning: "bit \(bit)")
        }
    }

    /// The letters of the set flags, e.g. `OEK`.
    public var letters: String { String(setFlags.map(\.letter)) }

    /// Flags set here but not in `earlier`.
    public func added(since earlier: KernelTaint) -> KernelTaint {
        KernelTaint(mask: mask & ~earlier.mask)
    }

    /// Why a flag is set, for the flags a live patch can set or that
    /// concern signatures; nil for the others.
    public static func explanation(_ letter: Character) -> String? {
        switch letter {
        case "K": return "a livepatch module was loaded; every live patch sets it, until reboot"
        case "O":
            return "a module built outside the kernel's own tree was loaded; every livepatch module is one"
        case "E":
            return
                "a module without a valid signature from a trusted key was loaded; sign patches (suture build --sign) to avoid it"
        case "F": return "a module was loaded with its version checks overridden"
        case "R": return "a module was removed by force"
        case "W": return "the kernel printed a warning; see the kernel log (dmesg)"
        case "D": return "the kernel oopsed; see the kernel log and reboot soon"
        case "P": return "a module with a non-GPL licence was loaded"
        case "N": return "a test module was loaded"
        default: return nil
        }
    }

    /// One line per set flag: `K (live patched): why`.
    public var explained: [String] {
        setFlags.map { flag in
            "\(flag.letter) (\(flag.meaning))" + (Self.explanation(flag.letter).map { ": \($0)" } ?? "")
        }
    }

    /// `K (live patched), O (out-of-tree module)`, or `none`.
    public var summary: String {
        let flags = setFlags
        guard !flags.isEmpty else { return "none" }
        return flags.map { "\($0.letter) (\($0.meaning))" }.joined(separator: ", ")
    }
}
