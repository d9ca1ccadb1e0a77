// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Finds the threads that have not migrated in a transition, from the
/// per-thread `/proc/PID/task/TID/patch_state` (`proc_pid_patch_state`):
/// -1 outside transitions, else 0 (unpatched) or 1 (patched).
///
/// Tasks come and go while /proc is read. One that exits between its
/// listing and the read of one of its files is left out.
public struct TaskScanner: Sendable {
    public let tree: KernelTree

    public init(tree: KernelTree) { self.tree = tree }

    /// A thread by process and thread id.
    public struct Thread: Sendable, Hashable {
        public var pid: Int
        public var tid: Int

        public init(pid: Int, tid: Int) {
            self.pid = pid
            self.tid = tid
        }
    }

    /// Threads whose `patch_state` is set and differs from `direction`'s target.
    public func pending(_ direction: TransitionDirection) -> [Thread] {
        let target = direction.targetState
        var result: [Thread] = []
        for pid in Self.numbers(in: tree.proc) {
            let tasks = Path.join(tree.proc, String(pid), "task")
            for tid in Self.numbers(in: tasks) {
                guard let state = KernelFiles.integer(Path.join(tasks, String(tid), "patch_state")) else { continue }
                if state >= 0 && state != target {
                    result.append(Thread(pid: pid, tid: tid))
                }
            }
        }
        return result
    }

    /// The numeric entries of a folder, in numeric order.
    private static func numbers(in folder: String) -> [Int] {
        KernelFiles.list(folder).compactMap { Int($0) }.sorted()
    }

    /// The thread's name; nil when it has exited.
    public func comm(_ thread: Thread) -> String? {
        KernelFiles.read(Path.join(taskFolder(thread), "comm"))
    }

    /// The thread's kernel stack, innermost first; empty when unreadable.
    public func stack(_ thread: Thread) -> [StackFrame] {
        guard let text = try? FileSystem.readText(Path.join(taskFolder(thread), "stack")) else { return [] }
        return text.split(separator: "\n").compactMap { StackFrame(line: String($0)) }
    }

    /// Full descriptions of the pending threads that still exist, with the
    /// frames of each stack that belong to the patch.
    public func describe(_ threads: [Thread], matching matcher: PatchFrameMatcher) -> [PendingTask] {
        threads.compactMap { thread in
            guard let comm = comm(thread) else { return nil }
            let stack = stack(thread)
            var names: [String] = []
            for frame in stack where matcher.matches(frame) && !names.contains(frame.function) {
                names.append(frame.function)
            }
            return PendingTask(pid: thread.pid, tid: thread.tid, comm: comm, stack: stack, patchFunctions: names)
        }
    }

    private func taskFolder(_ thread: Thread) -> String {
        Path.join(tree.proc, String(thread.pid), "task", String(thread.tid))
    }
}

/// Tells which stack frames belong to a patch, as `klp_check_stack` sees it:
/// while patching, a task may not sleep in a function the patch replaces;
/// while unpatching, not in the patch's own code. Frames in the module of
/// another patch that replaces one of the same functions count too: the
/// kernel then checks that patch's version of the function.
public struct PatchFrameMatcher: Sendable {
    public var patchModule: String
    /// Replaced functions by object: `vmlinux` or a module name.
    public var functions: [String: Set<String>]
    /// Modules of other patches that change one of the same functions.
    public var relatedModules: Set<String>

    public init(patch: PatchStatus, others: [PatchStatus] = []) {
        patchModule = patch.module
        var functions: [String: Set<String>] = [:]
        for object in patch.objects {
            functions[object.name, default: []].formUnion(object.functions.map(\.name))
        }
        self.functions = functions
        var related = Set<String>()
        for other in others where other.module != patch.module {
            let overlaps = other.objects.contains { object in
                object.functions.contains { functions[object.name]?.contains($0.name) ?? false }
            }
            if overlaps { related.insert(other.module) }
        }
        relatedModules = related
    }

    public func matches(_ frame: StackFrame) -> Bool {
        if let module = frame.module, module == patchModule || relatedModules.contains(module) {
            return true
        }
        return functions[frame.module ?? "vmlinux"]?.contains(frame.function) ?? false
    }
}
