// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Reads what the running kernel shows about live patches: the folders of
/// `/sys/kernel/livepatch` (`klp_patch`/`klp_object`/`klp_func` kobjects in
/// kernel/livepatch/core.c) and the livepatch modules of `/proc/modules`.
///
/// Any of it may vanish while it is read, as patches are freed after a
/// transition; a vanished patch reads as not present, never as an error.
public struct LivepatchSysfs: Sendable {
    public let tree: KernelTree

    public init(tree: KernelTree) { self.tree = tree }

    /// Whether the kernel has livepatch support (`CONFIG_LIVEPATCH`).
    public var isSupported: Bool { FileSystem.isDirectory(tree.livepatch) }

    /// `uname -r` of the running kernel.
    public func runningRelease() -> String {
        KernelFiles.read(tree.osRelease) ?? Kernel.release()
    }

    /// `/proc/modules`, newest first.
    public func modules() -> [LoadedModule] {
        LoadedModule.parse(FileSystem.readTextIfPresent(tree.modules) ?? "")
    }

    /// Names of the patch folders, sorted.
    public func patchNames() -> [String] {
        KernelFiles.list(tree.livepatch).filter { FileSystem.isDirectory(tree.patch($0)) }
    }

    /// The patch's sysfs state, or nil when its folder is gone.
    public func patch(_ name: String) -> PatchFolder? {
        let folder = tree.patch(name)
        guard let enabled = KernelFiles.flag(Path.join(folder, "enabled")),
            let transition = KernelFiles.flag(Path.join(folder, "transition"))
        else { return nil }
        var objects: [PatchObject] = []
        for entry in KernelFiles.list(folder) {
            let objectFolder = Path.join(folder, entry)
            guard FileSystem.isDirectory(objectFolder) else { continue }
            var functions: [PatchFunction] = []
            for function in KernelFiles.list(objectFolder)
            where FileSystem.isDirectory(Path.join(objectFolder, function)) {
                // `<function,sympos>`; a function name has no comma.
                guard let comma = function.lastIndex(of: ","),
                    let sympos = Int(function[function.index(after: comma)...])
                else {
                    continue
                }
                functions.append(PatchFunction(name: String(function[..<comma]), sympos: sympos))
            }
            objects.append(
                PatchObject(
                    name: entry, patched: KernelFiles.flag(Path.join(objectFolder, "patched")),
                    functions: functions))
        }
        // Sysfs lists folders in no useful order: vmlinux first, then modules by name.
        objects.sort { ($0.isVmlinux ? 0 : 1, $0.name) < ($1.isVmlinux ? 0 : 1, $1.name) }
        // A patch folder that disappeared while we listed it is gone.
        guard FileSystem.isDirectory(folder) else { return nil }
        return PatchFolder(
            name: name, enabled: enabled, transition: transition,
            replace: KernelFiles.flag(Path.join(folder, "replace")),
            stackOrder: KernelFiles.integer(Path.join(folder, "stack_order")),
            objects: objects)
    }

    /// Just `enabled` and `transition`, for polling; nil when the patch is gone.
    public func transitionState(_ name: String) -> (enabled: Bool, transition: Bool)? {
        let folder = tree.patch(name)
        guard let enabled = KernelFiles.flag(Path.join(folder, "enabled")),
            let transition = KernelFiles.flag(Path.join(folder, "transition"))
        else { return nil }
        return (enabled, transition)
    }

    /// The patch now in transition, if any; the kernel allows one.
    public func transitionPatch() -> PatchFolder? {
        for name in patchNames() where transitionState(name)?.transition == true {
            if let folder = patch(name), folder.transition { return folder }
        }
        return nil
    }

    /// A module's reference count, `/sys/module/NAME/refcnt`; nil when it is not loaded.
    public func referenceCount(_ module: String) -> Int? {
        KernelFiles.integer(Path.join(tree.module(module), "refcnt"))
    }

    /// Whether the module is loaded.
    public func isLoaded(_ module: String) -> Bool {
        modules().contains { $0.name == module }
    }

    /// Every livepatch module and every patch, in stack order (oldest
    /// first), without task details.
    ///
    /// Stack order is `stack_order` where the kernel has it (6.8 and later),
    /// else module load order: `/proc/modules` lists the newest first, and
    /// the kernel appends each enabled patch to `klp_patches` as it loads.
    public func patches() -> [PatchStatus] {
        let loaded = modules()
        let folders = patchNames().compactMap { patch($0) }
        let byName = Dictionary(folders.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var order: [String] = loaded.reversed().filter { $0.isLivepatch || byName[$0.name] != nil }.map(\.name)
        for folder in folders where !order.contains(folder.name) { order.append(folder.name) }
        if folders.allSatisfy({ $0.stackOrder != nil }) && !folders.isEmpty {
            let rank = Dictionary(folders.map { ($0.name, $0.stackOrder!) }, uniquingKeysWith: { a, _ in a })
            let withPatch = order.filter { rank[$0] != nil }.sorted { rank[$0]! < rank[$1]! }
            order = order.filter { rank[$0] == nil } + withPatch
        }
        return order.map { name in
            let module = loaded.first { $0.name == name }
            let record = module.flatMap { LoadRecord.read(tree, for: $0) }
            var status: PatchStatus
            if let folder = byName[name] {
                status = PatchStatus(
                    name: name, module: name, present: true, enabled: folder.enabled,
                    transition: folder.transition, replace: folder.replace ?? record?.replace,
                    file: record?.file, objects: folder.objects)
            } else {
                status = PatchStatus(
                    name: name, module: name, present: false, enabled: false, transition: false,
                    replace: record?.replace, file: record?.file, objects: [])
            }
            status.builtFor = record?.builtFor
            status.diffs = record?.diffs ?? []
            status.description = record?.description
            status.cves = record?.cves ?? []
            status.signed = record?.signed
            status.signer = record?.signer
            status.verification = record?.verification ?? []
            return status
        }
    }
}

/// One `/sys/kernel/livepatch/NAME` folder.
public struct PatchFolder: Sendable, Equatable {
    public var name: String
    public var enabled: Bool
    public var transition: Bool
    /// The `replace` attribute of newer kernels; nil on 6.1.
    public var replace: Bool?
    /// The `stack_order` attribute of newer kernels; nil on 6.1.
    public var stackOrder: Int?
    public var objects: [PatchObject]

    public var direction: TransitionDirection? {
        transition ? (enabled ? .patching : .unpatching) : nil
    }
}
