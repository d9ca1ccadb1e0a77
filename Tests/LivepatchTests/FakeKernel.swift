// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Foundation
import Livepatch
import Platform
import SystemPackage

/// A fake sysfs and procfs tree with a thread that plays the livepatch
/// core: transitions complete unless a task blocks them, writes to
/// `enabled` reverse or disable, disabled patches are freed, cumulative
/// patches free the others, and references pin modules as in the kernel.
///
/// The tree's files are replaced atomically, as sysfs attributes never
/// read half-written; folders appear and vanish as patches come and go.
final class FakeKernel: @unchecked Sendable {
    let directory: TemporaryDirectory
    let tree: KernelTree
    private let lock = NSLock()
    private var thread: Thread?
    private var stopped = false

    struct Patch {
        var objects: [PatchObject]
        var replace = false
        var enabled = true
        var transition = true
        var forced = false
        /// Ticks until the freed patch's folder goes and its module
        /// reference drops, as `klp_free_patch_async` does it later.
        var freeIn: Int?
    }

    struct Task {
        var pid: Int
        var tid: Int
        var comm: String
        var stack: [String]
        /// Directions in which this task does not migrate.
        var blocks: Set<TransitionDirection> = []
    }

    struct Module {
        var name: String
        var size: Int
        var references: Int
        var flags: String
    }

    private var patches: [(name: String, patch: Patch)] = []
    private var modules: [Module] = []  // oldest first
    private var tasks: [Task] = []
    private var taint: UInt64 = 0
    /// An idle task that blocks transitions in these directions.
    private var idleBlocks: Set<TransitionDirection> = []

    /// Objects of the next patches by name; default: vmlinux cmdline_proc_show.
    var patchObjects: [String: [PatchObject]] = [:]
    /// A `finit_module` failure to inject, with kernel log lines.
    var loadFailure: (Errno, [String])?
    private(set) var loads: [(name: String, parameters: String, image: [UInt8])] = []
    private(set) var removals: [String] = []
    /// Runs at the start of every `finit_module`, before the image is read:
    /// a test swaps the module file here.
    var beforeLoad: (() -> Void)?

    init(release: String = SyntheticModule.release) throws {
        directory = try TemporaryDirectory(prefix: "suture-fake-kernel")
        tree = KernelTree(root: directory.path)
        try FileSystem.makeDirectories(tree.livepatch)
        try FileSystem.makeDirectories(Path.join(tree.proc, "sys/kernel"))
        try FileSystem.makeDirectories(Path.directory(of: tree.kmsg))
        try FileSystem.write(tree.osRelease, release + "\n")
        try FileSystem.write(tree.kmsg, "")
        lock.withLock { publish() }
    }

    deinit { stop() }

    /// A system for the manager over this tree, with short timings.
    func system(uid: UInt32 = 0) -> LivepatchSystem {
        var system = LivepatchSystem(tree: tree, calls: Calls(kernel: self), effectiveUserID: uid)
        system.pollInterval = 0.005
        system.progressInterval = 0.05
        system.lockTimeout = 0.5
        system.settleTimeout = 1
        return system
    }

    // MARK: - The kernel thread

    func start() {
        let thread = Thread { [weak self] in
            while let self, !self.isStopped {
                self.lock.withLock { self.tick() }
                Thread.sleep(forTimeInterval: 0.002)
            }
        }
        self.thread = thread
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    /// Runs one step of the fake livepatch core; the lock is held.
    private func tick() {
        for index in patches.indices where patches[index].patch.transition {
            let direction: TransitionDirection = patches[index].patch.enabled ? .patching : .unpatching
            let blocked = tasks.contains { $0.blocks.contains(direction) } || idleBlocks.contains(direction)
            if !blocked {
                patches[index].patch.transition = false
                finish(index)
            }
        }
        for index in patches.indices {
            if let ticks = patches[index].patch.freeIn {
                patches[index].patch.freeIn = ticks - 1
                if ticks <= 1 && !patches[index].patch.forced { reference(patches[index].name, -1) }
            }
        }
        patches.removeAll { ($0.patch.freeIn ?? 1) <= 0 }
        publish()
    }

    /// A transition just ended for `patches[index]`.
    private func finish(_ index: Int) {
        let entry = patches[index]
        if !entry.patch.enabled {
            patches[index].patch.freeIn = 3
        } else if entry.patch.replace {
            // klp_unpatch_replaced_patches: disabled at once, freed later.
            for other in patches.indices where other != index {
                patches[other].patch.enabled = false
                patches[other].patch.transition = false
                patches[other].patch.freeIn = 3
            }
        }
    }

    private func reference(_ name: String, _ change: Int) {
        if let i = modules.firstIndex(where: { $0.name == name }) { modules[i].references += change }
    }

    /// Writes the model into the tree; the lock is held.
    private func publish() {
        var lines: [String] = []
        for module in modules.reversed() {
            let flags = module.flags.isEmpty ? "" : " (\(module.flags))"
            lines.append("\(module.name) \(module.size) \(module.references) - Live 0xffffffffc0000000\(flags)")
            put(Path.join(tree.module(module.name), "refcnt"), "\(module.references)")
        }
        put(tree.modules, lines.map { $0 + "\n" }.joined())
        // /sys/module/module holds the module loader's own parameters (sig_enforce).
        for name in Files.list(Path.join(tree.sys, "module"))
        where name != "module" && !modules.contains(where: { $0.name == name }) {
            try? FileSystem.removeTree(tree.module(name))
        }
        put(tree.tainted, "\(taint)")

        for (name, patch) in patches {
            let folder = tree.patch(name)
            put(Path.join(folder, "enabled"), patch.enabled ? "1" : "0")
            put(Path.join(folder, "force"), "")
            put(Path.join(folder, "transition"), patch.transition ? "1" : "0")
            for object in patch.objects {
                let objectFolder = Path.join(folder, object.name)
                put(Path.join(objectFolder, "patched"), object.patched == true ? "1" : "0")
                for function in object.functions {
                    try? FileSystem.makeDirectories(Path.join(objectFolder, "\(function.name),\(function.sympos)"))
                }
            }
        }
        for name in Files.list(tree.livepatch) where !patches.contains(where: { $0.name == name }) {
            try? FileSystem.removeTree(tree.patch(name))
        }

        let running = patches.first { $0.patch.transition }
        for task in tasks {
            let folder = Path.join(tree.proc, "\(task.pid)", "task", "\(task.tid)")
            var state = -1
            if let running {
                let direction: TransitionDirection = running.patch.enabled ? .patching : .unpatching
                state = task.blocks.contains(direction) ? 1 - direction.targetState : direction.targetState
            }
            put(Path.join(folder, "patch_state"), "\(state)")
            put(Path.join(folder, "comm"), task.comm)
            put(Path.join(folder, "stack"), task.stack.map { "[<0>] \($0)\n" }.joined())
        }
    }

    /// Replaces a file atomically when its content changes.
    private func put(_ path: String, _ text: String) {
        let wanted = text.hasSuffix("\n") || text.isEmpty ? text : text + "\n"
        if FileSystem.readTextIfPresent(path) == wanted { return }
        try? FileSystem.makeDirectories(Path.directory(of: path))
        try? FileSystem.writeAtomically(path, Array(wanted.utf8))
    }

    // MARK: - Setting the scene

    func addTask(pid: Int, tid: Int? = nil, comm: String, stack: [String], blocks: Set<TransitionDirection> = []) {
        lock.withLock {
            tasks.append(Task(pid: pid, tid: tid ?? pid, comm: comm, stack: stack, blocks: blocks))
            publish()
        }
    }

    func unblockTasks() {
        lock.withLock {
            for i in tasks.indices { tasks[i].blocks = [] }
            idleBlocks = []
        }
    }

    func blockByIdleTask(_ directions: Set<TransitionDirection>) {
        lock.withLock { idleBlocks = directions }
    }

    /// An ordinary module, or a livepatch module whose patch is gone.
    func addModule(_ name: String, livepatch: Bool, references: Int = 0) {
        lock.withLock {
            modules.append(Module(name: name, size: 16384, references: references, flags: livepatch ? "OEK" : "OE"))
            publish()
        }
    }

    /// A loaded livepatch module with its patch, settled (not in transition).
    func addPatch(_ name: String, objects: [PatchObject]? = nil, enabled: Bool = true, transition: Bool = false) {
        lock.withLock {
            modules.append(Module(name: name, size: 16384, references: 1, flags: "OEK"))
            var patch = Patch(objects: objects ?? Self.cmdlineObjects)
            patch.enabled = enabled
            patch.transition = transition
            patches.append((name, patch))
            publish()
        }
    }

    static let cmdlineObjects = [
        PatchObject(
            name: "vmlinux", patched: true,
            functions: [PatchFunction(name: "cmdline_proc_show", sympos: 1)])
    ]

    var patchNames: [String] { lock.withLock { patches.map(\.name) } }
    var moduleNames: [String] { lock.withLock { modules.map(\.name) } }
    func references(_ name: String) -> Int? { lock.withLock { modules.first { $0.name == name }?.references } }
    func patchState(_ name: String) -> (enabled: Bool, transition: Bool)? {
        lock.withLock { patches.first { $0.name == name }.map { ($0.patch.enabled, $0.patch.transition) } }
    }

    // MARK: - The system calls

    struct Calls: KernelCalls {
        let kernel: FakeKernel

        func load(_ fd: FileDescriptor, parameters: String) throws(PlatformError) {
            try kernel.load(fd, parameters: parameters)
        }

        func remove(_ name: String) throws(PlatformError) {
            try kernel.remove(name)
        }

        func writeAttribute(_ path: String, _ value: String) throws(PlatformError) {
            try kernel.writeAttribute(path, value)
        }
    }

    /// `enabled_store` and `force_store` of kernel/livepatch/core.c.
    func writeAttribute(_ path: String, _ value: String) throws(PlatformError) {
        lock.lock()
        defer { lock.unlock() }
        let attribute = Path.base(of: path)
        let name = Path.base(of: Path.directory(of: path))
        guard Path.directory(of: Path.directory(of: path)) == tree.livepatch,
            let index = patches.firstIndex(where: { $0.name == name })
        else {
            throw PlatformError(.systemCall, errno: .noSuchFileOrDirectory, "open \(path)")
        }
        guard let number = Int(value.trimmingWhitespace()) else {
            throw PlatformError(.systemCall, errno: .invalidArgument, "write \(path)")
        }
        var patch = patches[index].patch
        switch attribute {
        case "enabled":
            let enabled = number != 0
            guard patch.enabled != enabled, patch.freeIn == nil else {
                throw PlatformError(.systemCall, errno: .invalidArgument, "write \(path)")
            }
            if patch.transition {
                patch.enabled = enabled  // klp_reverse_transition
            } else if !enabled {
                guard !patches.contains(where: { $0.patch.transition }) else {
                    throw PlatformError(.systemCall, errno: .resourceBusy, "write \(path)")
                }
                patch.enabled = false
                patch.transition = true
            } else {
                throw PlatformError(.systemCall, errno: .invalidArgument, "write \(path)")
            }
            patches[index].patch = patch
        case "force":
            guard number != 0 else { return }
            guard patch.transition else {
                throw PlatformError(.systemCall, errno: .invalidArgument, "write \(path)")
            }
            // klp_force_transition: every task migrated; the transition
            // ends at the next try.
            if !patch.enabled { patches[index].patch.forced = true }
            patches[index].patch.transition = false
            finish(index)
        default:
            throw PlatformError(.systemCall, errno: .permissionDenied, "write \(path)")
        }
        publish()
    }

    private func load(_ fd: FileDescriptor, parameters: String) throws(PlatformError) {
        beforeLoad?()
        let image = try FileSystem.read("/proc/self/fd/\(fd.rawValue)")
        guard let elf = try? ELFFile.parse(image), let name = elf.modinfoValue("name") else {
            throw PlatformError(.systemCall, errno: .execFormatError, "finit_module")
        }
        lock.lock()
        defer { lock.unlock() }
        do {
            loads.append((name, parameters, image))
            if let (errno, log) = loadFailure {
                let old = FileSystem.readTextIfPresent(tree.kmsg) ?? ""
                try? FileSystem.write(tree.kmsg, old + log.map { "3,1,1,-;\($0)\n" }.joined())
                throw PlatformError(.systemCall, errno: errno, "finit_module")
            }
            guard !modules.contains(where: { $0.name == name }) else {
                throw PlatformError(.systemCall, errno: .fileExists, "finit_module")
            }
            let livepatch = elf.modinfoValue("livepatch") == "Y"
            if livepatch && patches.contains(where: { $0.patch.transition }) {
                throw PlatformError(.systemCall, errno: .resourceBusy, "finit_module")
            }
            modules.append(
                Module(
                    name: name, size: 16384 + image.count, references: livepatch ? 1 : 0,
                    flags: livepatch ? "OEK" : "OE"))
            taint |= (1 << 12) | (1 << 13) | (livepatch ? 1 << 15 : 0)
            if livepatch {
                var patch = Patch(objects: patchObjects[name] ?? Self.cmdlineObjects)
                patch.replace = elf.modinfoValue(ModuleFile.replaceKey) == "Y"
                patches.append((name, patch))
            }
            publish()
        }
    }

    private func remove(_ name: String) throws(PlatformError) {
        lock.lock()
        defer { lock.unlock() }
        do {
            guard let index = modules.firstIndex(where: { $0.name == name }) else {
                throw PlatformError(.systemCall, errno: .noSuchFileOrDirectory, "delete_module")
            }
            guard modules[index].references == 0 else {
                throw PlatformError(.systemCall, errno: .wouldBlock, "delete_module")
            }
            modules.remove(at: index)
            removals.append(name)
            publish()
        }
    }
}

/// Small readers for the fake tree and the tests.
enum Files {
    static func read(_ path: String) -> String? {
        (try? FileSystem.readText(path))?.trimmingWhitespace()
    }

    static func list(_ path: String) -> [String] {
        (try? FileSystem.list(path)) ?? []
    }
}
