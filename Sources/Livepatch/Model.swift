// SPDX-License-Identifier: GPL-2.0-only

/// One patched function: `/sys/kernel/livepatch/PATCH/OBJECT/NAME,SYMPOS`.
public struct PatchFunction: Sendable, Equatable {
    /// The name of the function the patch replaces (`klp_func.old_name`).
    public var name: String
    /// Its position among same-named symbols of the object; the kernel
    /// shows 1 for a unique name (`klp_init_func`).
    public var sympos: Int

    public init(name: String, sympos: Int) {
        self.name = name
        self.sympos = sympos
    }
}

/// One object a patch changes: `vmlinux` or a module.
public struct PatchObject: Sendable, Equatable {
    /// `vmlinux` or the module name.
    public var name: String
    /// Whether its functions are redirected now. False while the patched
    /// module is not loaded: the patch waits for it. Nil when unknown.
    public var patched: Bool?
    public var functions: [PatchFunction]

    public init(name: String, patched: Bool?, functions: [PatchFunction]) {
        self.name = name
        self.patched = patched
        self.functions = functions
    }

    public var isVmlinux: Bool { name == "vmlinux" }
}

/// Which way a transition goes.
public enum TransitionDirection: String, Sendable {
    /// Tasks move to the new code (`KLP_PATCHED`).
    case patching
    /// Tasks move back to the old code (`KLP_UNPATCHED`).
    case unpatching

    /// The `patch_state` value a task has once it has migrated.
    public var targetState: Int { self == .patching ? 1 : 0 }
}

/// One kernel stack entry from `/proc/PID/task/TID/stack`, as printed by
/// `%pB`: `function+0xoffset/0xsize [module]`.
public struct StackFrame: Sendable, Equatable {
    public var function: String
    public var offset: UInt64?
    public var size: UInt64?
    /// The module the code belongs to; nil for vmlinux.
    public var module: String?

    public init(function: String, offset: UInt64? = nil, size: UInt64? = nil, module: String? = nil) {
        self.function = function
        self.offset = offset
        self.size = size
        self.module = module
    }

    /// Parses one line, with or without the `[<0>] ` address prefix.
    /// Returns nil for blank lines.
    public init?(line: String) {
        var text = Substring(line.trimmingWhitespace())
        if text.hasPrefix("[<"), let close = text.firstRange(of: ">] ") {
            text = text[close.upperBound...]
        }
        guard !text.isEmpty else { return nil }
        var module: String?
        if text.hasSuffix("]"), let open = text.lastIndex(of: "[") {
            module = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
            text = Substring(String(text[..<open]).trimmingWhitespace())
        }
        var function = text
        var offset: UInt64?
        var size: UInt64?
        if let plus = text.lastIndex(of: "+") {
            let location = text[text.index(after: plus)...].split(separator: "/")
            if location.count == 2, let o = Self.hex(location[0]), let s = Self.hex(location[1]) {
                function = text[..<plus]
                offset = o
                size = s
            }
        }
        self.init(function: String(function), offset: offset, size: size, module: module)
    }

    private static func hex(_ text: Substring) -> UInt64? {
        let digits = text.hasPrefix("0x") ? text.dropFirst(2) : text
        return UInt64(digits, radix: 16)
    }

    /// The line as the kernel prints it, without the address prefix.
    public var text: String {
        var result = function
        if let offset, let size {
            result += "+0x\(String(offset, radix: 16))/0x\(String(size, radix: 16))"
        }
        if let module { result += " [\(module)]" }
        return result
    }
}

/// A thread that has not yet migrated to the transition's target state.
public struct PendingTask: Sendable, Equatable {
    public var pid: Int
    public var tid: Int
    public var comm: String
    /// Its kernel stack, innermost first; empty when it could not be read.
    public var stack: [StackFrame]
    /// Names of the stack's functions that belong to the patch: the kernel
    /// will not migrate a task sleeping in one of them (`klp_check_stack`).
    public var patchFunctions: [String]

    public init(pid: Int, tid: Int, comm: String, stack: [StackFrame], patchFunctions: [String]) {
        self.pid = pid
        self.tid = tid
        self.comm = comm
        self.stack = stack
        self.patchFunctions = patchFunctions
    }
}

/// One loaded livepatch module and its patch, as `list` and `status` show it.
public struct PatchStatus: Sendable, Equatable {
    /// The patch name, which the kernel takes from the module name.
    public var name: String
    /// The module's name.
    public var module: String
    /// Whether `/sys/kernel/livepatch/NAME` exists. A loaded livepatch
    /// module without it has a patch that was disabled or replaced.
    public var present: Bool
    public var enabled: Bool
    public var transition: Bool
    /// Whether the patch replaces all earlier ones; nil when unknown.
    public var replace: Bool?
    /// The file Suture loaded it from, when Suture loaded it.
    public var file: String?
    /// The kernel release and diffs the patch was built from (modinfo
    /// `suture.release`, `suture.diff`), when Suture loaded it.
    public var builtFor: String?
    public var diffs: [String] = []
    /// What the patch fixes (modinfo `suture.description`, `suture.cve`),
    /// when Suture loaded it.
    public var description: String?
    public var cves: [String] = []
    /// Whether the loaded file was signed, and by whom (see `LoadRecord`).
    public var signed: Bool?
    public var signer: String?
    /// How each function was verified at load (`RunningCodeCheck.line`).
    public var verification: [String] = []
    public var objects: [PatchObject]
    /// Tasks not yet migrated, during a transition.
    public var pendingTasks: [PendingTask]
    /// During a transition with no pending task visible in /proc: the
    /// remaining ones are idle tasks (`swapper/N`), which /proc does not list.
    public var hiddenTasksPending: Bool

    public init(
        name: String, module: String, present: Bool, enabled: Bool, transition: Bool,
        replace: Bool?, file: String? = nil, objects: [PatchObject],
        pendingTasks: [PendingTask] = [], hiddenTasksPending: Bool = false
    ) {
        self.name = name
        self.module = module
        self.present = present
        self.enabled = enabled
        self.transition = transition
        self.replace = replace
        self.file = file
        self.objects = objects
        self.pendingTasks = pendingTasks
        self.hiddenTasksPending = hiddenTasksPending
    }

    /// The direction of the running transition, if any.
    public var direction: TransitionDirection? {
        guard present, transition else { return nil }
        return enabled ? .patching : .unpatching
    }

    /// One word for people: `enabled`, `patching`, `unpatching`, `disabled`
    /// (a patch folder without enabled bit), or `gone` (module without patch).
    public var state: String {
        guard present else { return "gone" }
        if let direction { return direction.rawValue }
        return enabled ? "enabled" : "disabled"
    }
}
