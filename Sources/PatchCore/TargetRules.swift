// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// What the object diff needs to know about the target, and nothing more:
/// which special sections exist, whether a changed function must carry an
/// fentry call, and what cannot be live-patched. The kernel build and the
/// process patcher each pass their own value.
public struct TargetRules: Sendable {
    public var architecture: Architecture
    /// A changed function must call this symbol near its entry (the
    /// kernel's ftrace hook, which livepatch redirects through).
    public var requiredEntryCall: String?
    /// How far into a function the entry call may sit (after `endbr64` and
    /// padding).
    public var entryCallWindow: UInt64 = 16
    /// The special sections of this target, by name.
    public var specialSections: [SpecialSectionRule]
    /// Sections that hold no code or data the patch cares about; they are
    /// neither compared nor copied (`.comment`, debug info, `.eh_frame` …).
    public var ignoredSections: [SectionPattern]
    /// Sections whose code or data must not change (`.init.*`, `.exit.*`).
    public var frozenSections: [(pattern: SectionPattern, reason: String)]
    /// Functions that take `__LINE__` as an argument; a change only in the
    /// line constants passed to them is not a functional change.
    public var lineNumberFunctions: Set<String>
    /// Refuse thread-local data and ifuncs (user space).
    public var refuseThreadLocal: Bool = false
    public var refuseIndirectFunctions: Bool = false
    /// Data sections whose records hold a source line number: section →
    /// the 32-bit field's offset in a record and the mask of its line bits.
    /// A record that differs only there is not a functional change.
    public var dataLineFields: [String: (offset: Int, mask: UInt32)] = [:]
    /// Read kpatch-style directives (`.kpatch.*` sections) from the patched
    /// object: ignored functions and sections, callbacks, forced functions.
    public var readsDirectives: Bool = false
    /// Carry the `.eh_frame` entries (and the `.gcc_except_table` data they
    /// point to) of the included functions into the patch object, so that
    /// exceptions unwind through the new code (user space).
    public var carriesUnwindTables: Bool = false
    /// Give included code its own copy of every dynamic-debug descriptor it
    /// uses (and so of its static key), also of existing ones: a module's
    /// own key cannot be the target of the patch's jump labels.
    public var copiesDynamicDebug: Bool = false

    public init(
        architecture: Architecture, requiredEntryCall: String?, specialSections: [SpecialSectionRule],
        ignoredSections: [SectionPattern], frozenSections: [(pattern: SectionPattern, reason: String)],
        lineNumberFunctions: Set<String>
    ) {
        self.architecture = architecture
        self.requiredEntryCall = requiredEntryCall
        self.specialSections = specialSections
        self.ignoredSections = ignoredSections
        self.frozenSections = frozenSections
        self.lineNumberFunctions = lineNumberFunctions
    }

    public func special(_ name: String) -> SpecialSectionRule? {
        specialSections.first { $0.name == name }
    }

    public func isIgnored(_ name: String) -> Bool {
        ignoredSections.contains { $0.matches(name) }
    }

    public func frozenReason(_ name: String) -> String? {
        frozenSections.first { $0.pattern.matches(name) }?.reason
    }

    /// The rules for Linux kernel objects (vmlinux and modules) on x86-64.
    /// `entrySizes` overrides the entry sizes of special sections, which the
    /// kernel build measures from the target's own headers.
    public static func kernel(_ architecture: Architecture = .x86_64, entrySizes: [String: Int] = [:]) -> TargetRules {
        var specials = SpecialSectionRule.linuxX86_64
        for i in specials.indices {
            if let size = entrySizes[specials[i].name] { specials[i].entrySize = size }
            if let parallel = specials[i].parallel, let size = entrySizes[parallel.name] {
                specials[i].parallel = (parallel.name, size)
            }
        }
        var rules = TargetRules(
            architecture: architecture,
            requiredEntryCall: "__fentry__",
            specialSections: specials,
            ignoredSections: [
                .exact(".comment"), .exact(".note.GNU-stack"), .prefix(".note."), .prefix(".debug_"),
                .prefix(".discard."), .exact(".eh_frame"), .prefix(".BTF"), .exact(".modinfo"),
                .exact(".gnu.linkonce.this_module"), .prefix("__ksymtab"), .prefix("___ksymtab"), .prefix("__kcrctab"),
                .exact(".export_symbol"), .exact("__versions"), .exact(".llvm_addrsig"), .prefix(".rela"),
                .exact(".symtab"),
                .exact(".strtab"), .exact(".shstrtab"), .exact(".group"), .prefix(PatchDirectives.sectionPrefix),
            ],
            frozenSections: [
                (.prefix(".init."), "__init code and data run only at boot or module load and cannot be live-patched"),
                (.prefix(".exit."), "__exit code runs only at module unload and cannot be live-patched"),
                (.prefix(".meminit."), "__meminit code cannot be live-patched"),
                (.prefix(".ref.text"), "__ref code cannot be live-patched"),
            ],
            lineNumberFunctions: [
                "__might_sleep", "___might_sleep", "__might_resched", "__might_fault", "__cant_sleep",
                "__cant_migrate", "lockdep_rcu_suspicious", "warn_slowpath_fmt", "__warn_printk",
                "__btrfs_abort_transaction", "__btrfs_handle_fs_error", "_dev_warn", "rcu_read_lock_sched_held",
            ])
        rules.readsDirectives = true
        // struct _ddebug: four pointers, then `lineno:18` (dynamic debug).
        rules.dataLineFields = ["__dyndbg": (offset: 32, mask: 0x3ffff)]
        return rules
    }

    /// The rules for user-space programs: no entry call, no kernel special
    /// sections, no thread-local data or ifuncs.
    public static func userSpace(_ architecture: Architecture = .x86_64) -> TargetRules {
        var rules = TargetRules(
            architecture: architecture,
            requiredEntryCall: nil,
            specialSections: [],
            ignoredSections: [
                .exact(".comment"), .exact(".note.GNU-stack"), .prefix(".note."), .prefix(".debug_"),
                .exact(".eh_frame"), .prefix(".rela"), .exact(".symtab"), .exact(".strtab"),
                .exact(".shstrtab"), .exact(".group"), .exact(".llvm_addrsig"),
            ],
            frozenSections: [
                (.exact(".init"), "code in .init runs only at start-up"),
                (.exact(".fini"), "code in .fini runs only at exit"),
                (.prefix(".text.startup"), "start-up code (main, constructors) runs only once"),
            ],
            lineNumberFunctions: ["__assert_fail"])
        rules.refuseThreadLocal = true
        rules.refuseIndirectFunctions = true
        rules.carriesUnwindTables = true
        return rules
    }
}

/// A section name pattern.
public enum SectionPattern: Sendable {
    case exact(String)
    case prefix(String)

    public func matches(_ name: String) -> Bool {
        switch self {
        case .exact(let s): return name == s
        case .prefix(let p): return name.hasPrefix(p)
        }
    }
}
