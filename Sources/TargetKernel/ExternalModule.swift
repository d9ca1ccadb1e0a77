// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// An external module folder built by kbuild against the target's headers
/// (`make -C headers M=folder`): the livepatch module's link and the
/// special-section probe both go through here.
public struct ExternalModule: Sendable {
    /// The target's headers (`/usr/src/linux-headers-RELEASE`).
    public let headers: String
    /// The module folder, holding its Makefile and sources.
    public let directory: String
    /// `CC`: the compiler that built the kernel.
    public let compiler: String
    /// The build root of the kernel's compiler, or nil for the host.
    public let root: BuildRoot?

    public init(headers: String, directory: String, compiler: String, root: BuildRoot? = nil) {
        self.headers = headers
        self.directory = directory
        self.compiler = compiler
        self.root = root
    }

    /// What a build root must see: the module folder, and the whole
    /// fetched kernel the headers are in (their Makefile includes the
    /// common headers, and their scripts link to the kbuild package).
    var binds: [String] {
        // `lib/modules/R/build` may lead through a merged-/usr `lib` link: bind the physical folder.
        let real = (try? FileSystem.realPath(headers)) ?? headers
        let top = real.firstRange(of: "/usr/src/").map { String(real[..<$0.lowerBound]) } ?? real
        return [top.isEmpty ? real : top, directory]
    }

    /// The `make` argument vector for `targets`, with `variables` such as
    /// `KBUILD_MODPOST_WARN=1`; `keepGoing` adds `-k`.
    public func arguments(_ targets: [String], variables: [String] = [], keepGoing: Bool = false) -> [String] {
        ["make", "-C", headers, "M=\(directory)", "CC=\(compiler)"] + (root == nil ? [] : ["HOSTCC=\(compiler)"])
            + variables + (keepGoing ? ["-k"] : []) + ["-j\(Kbuild.processors)"] + targets
    }

    /// Runs make; a make that runs but fails is a result, not an error.
    public func make(_ targets: [String], variables: [String] = [], keepGoing: Bool = false)
        throws(KernelError) -> CommandResult
    {
        do {
            let args = arguments(targets, variables: variables, keepGoing: keepGoing)
            guard let root else { return try Command.run(args) }
            return try root.run(args, binds: binds)
        } catch {
            throw KernelError(.compileFailed, "cannot run make: \(error.description)", cause: error)
        }
    }
}
