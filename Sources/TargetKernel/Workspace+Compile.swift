// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Compiling kbuild targets in a workspace.
extension Workspace {
    /// Compiles kbuild targets (`fs/proc/meminfo.o`, also `.i` or `.s`) with
    /// `cflags` as `KCFLAGS`, in parallel, and returns each target's path.
    /// The pristine tree is verified afterwards, also when make fails.
    public func compile(
        _ targets: [String], cflags: [String] = Kbuild.defaultCFlags, jobs: Int = Kbuild.processors
    ) throws(KernelError) -> [String: String] {
        guard !targets.isEmpty else { return [:] }
        var relative: [String] = []
        for target in targets {
            let r = try Workspace.treePath(target)
            guard r.hasSuffix(".o") || r.hasSuffix(".i") || r.hasSuffix(".s") else {
                throw KernelError(
                    .usage, "\(target): only objects (.o), preprocessed (.i) and assembly (.s) targets can be compiled")
            }
            relative.append(r)
        }
        needsCheck = true
        var failure: KernelError?
        do {
            try kbuild.make(relative, cflags: cflags, jobs: jobs, phase: "compile", failure: .compileFailed)
        } catch {
            failure = error
        }
        try checkPristine(after: "compiling \(relative.joined(separator: " "))")
        if let failure { throw failure }
        var result: [String: String] = [:]
        for r in relative {
            let output = Path.join(buildDirectory, r)
            guard FileSystem.exists(output) else {
                throw KernelError(
                    .compileFailed, "make succeeded but left no \(output); is \(r) a target of this tree?")
            }
            result[r] = output
        }
        return result
    }

    /// What kbuild recorded for a target compiled in this workspace: its
    /// command line and dependencies.
    public func commandFile(for target: String) throws(KernelError) -> KbuildCommandFile {
        try KbuildCommandFile(target: try Workspace.treePath(target), buildDirectory: buildDirectory)
    }

    /// The exact compiler command kbuild used for an object compiled here.
    public func compileCommand(for object: String) throws(KernelError) -> String {
        try commandFile(for: object).command
    }
}

extension PreparedTree {
    /// The objects that compile `file`, found in a throwaway workspace.
    public func objects(compiling file: String) throws(KernelError) -> [String] {
        let workspace = try Workspace(tree: self)
        let objects = try workspace.objects(compiling: file)
        try workspace.remove()
        return objects
    }
}
