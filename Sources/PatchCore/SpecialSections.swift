// SPDX-License-Identifier: GPL-2.0-only

/// One special section: an array of fixed-size entries, each of which
/// belongs to the function its first relocation points into. The patch keeps
/// only the entries of functions it includes.
public struct SpecialSectionRule: Sendable {
    public enum Policy: Sendable, Equatable {
        /// Keep the entries whose owner relocation points into an included function.
        case keepEntriesOfIncludedFunctions
        /// Copy the whole section when any included entry refers into it
        /// (replacement code of alternatives).
        case includeWholeWhenReferenced
        /// Never copy; the section only serves tools the patch does not need.
        case drop
    }

    public let name: String
    /// Bytes per entry. The kernel build measures these from the target's
    /// headers; the defaults are x86-64 Linux 6.1.
    public var entrySize: Int
    /// Offset in the entry of the relocation that names its function.
    public let ownerOffset: Int
    public let policy: Policy
    /// A field that holds `__LINE__` (offset, size): a difference there alone
    /// is not a functional change.
    public let lineField: (offset: Int, size: Int)?
    /// A section of entries parallel to this one (entry i here ↔ entry i
    /// there) that has no relocations of its own, with its entry size.
    public var parallel: (name: String, entrySize: Int)?
    /// Why the section exists, for the documentation and error messages.
    public let purpose: String

    public init(
        _ name: String, entrySize: Int, ownerOffset: Int = 0, policy: Policy = .keepEntriesOfIncludedFunctions,
        lineField: (offset: Int, size: Int)? = nil, parallel: (name: String, entrySize: Int)? = nil,
        purpose: String
    ) {
        self.name = name
        self.entrySize = entrySize
        self.ownerOffset = ownerOffset
        self.policy = policy
        self.lineField = lineField
        self.parallel = parallel
        self.purpose = purpose
    }

    /// The kernel's special sections on x86-64, with 6.1's entry layouts.
    ///
    /// | section | entry | owner | kept |
    /// |---|---|---|---|
    /// | `__bug_table` | 12: addr s32, file s32, line u16, flags u16 | addr | entries of included functions; line ignored |
    /// | `__jump_table` | 16: code s32, target s32, key s64 | code | entries of included functions |
    /// | `__ex_table` | 12: insn s32, fixup s32, data s32 | insn | entries of included functions |
    /// | `.altinstructions` | 12: instr s32, repl s32, cpuid u16, lens u8 u8 | instr | entries; `.altinstr_replacement` whole |
    /// | `.smp_locks` | 4: s32 to a lock prefix | it | entries |
    /// | `.parainstructions` | 16: instr u64, type u8, len u8 | instr | entries |
    /// | `.static_call_sites` | 8: addr s32, key s32 | addr | entries |
    /// | `.retpoline_sites`, `.return_sites`, `.call_sites`, `.ibt_endbr_seal` | 4: s32 | it | entries |
    /// | `__mcount_loc`, `__patchable_function_entries` | 8: u64 to the fentry call | it | entries |
    /// | `.orc_unwind_ip` with `.orc_unwind` | 4: s32 to code / 6: ORC entry, parallel | ip | pairs |
    /// | `.printk_index` | 8: pointer to a format record | — | dropped (debugfs index only) |
    public static let linuxX86_64: [SpecialSectionRule] = [
        SpecialSectionRule(
            "__bug_table", entrySize: 12, lineField: (8, 2),
            purpose: "BUG()/WARN() sites: address, file, line, flags"),
        SpecialSectionRule(
            "__jump_table", entrySize: 16,
            purpose: "static branches (jump labels): code, target, key"),
        SpecialSectionRule(
            "__ex_table", entrySize: 12,
            purpose: "exception fixups for user-memory access"),
        SpecialSectionRule(
            ".altinstructions", entrySize: 12,
            purpose: "alternative instructions patched at boot or load"),
        SpecialSectionRule(
            ".altinstr_replacement", entrySize: 1, policy: .includeWholeWhenReferenced,
            purpose: "replacement code of alternatives"),
        SpecialSectionRule(".smp_locks", entrySize: 4, purpose: "lock prefixes removed on UP"),
        SpecialSectionRule(".parainstructions", entrySize: 16, purpose: "paravirt call sites"),
        SpecialSectionRule(".static_call_sites", entrySize: 8, purpose: "static call sites"),
        SpecialSectionRule(".retpoline_sites", entrySize: 4, purpose: "indirect-call thunk sites"),
        SpecialSectionRule(".return_sites", entrySize: 4, purpose: "return thunk sites"),
        SpecialSectionRule(".call_sites", entrySize: 4, purpose: "call depth tracking sites"),
        SpecialSectionRule(".ibt_endbr_seal", entrySize: 4, purpose: "ENDBR instructions to seal"),
        SpecialSectionRule("__mcount_loc", entrySize: 8, purpose: "fentry call sites for ftrace"),
        SpecialSectionRule("__patchable_function_entries", entrySize: 8, purpose: "patchable function entries"),
        SpecialSectionRule(
            ".orc_unwind_ip", entrySize: 4, parallel: (".orc_unwind", 6),
            purpose: "ORC unwind table: addresses, with entries in .orc_unwind"),
        SpecialSectionRule(
            ".orc_unwind", entrySize: 6, policy: .drop,
            purpose: "ORC unwind entries, kept through .orc_unwind_ip"),
        SpecialSectionRule(
            ".printk_index", entrySize: 8, policy: .drop,
            purpose: "printk format index for debugfs; not needed by a patch"),
    ]
}
