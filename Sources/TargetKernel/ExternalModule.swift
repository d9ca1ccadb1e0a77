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

    public init(headers: String, directory: String, compiler: String) {
        self.headers = headers
        self.directory = directory
        self.compiler = compiler
    }

    /// The `make` argument vector for `targets`, with `variables` such as
    /// `KBUILD_MODPOST_WARN=1`; `keepGoing` adds `-k`.
    public func arguments(_ targets: [String], variables: [String] = [], keepGoing: Bool = false) -> [String] {
        ["make", "-C", headers, "M=\(directory)", "CC=\(compiler)"] + variables + (keepGoing ? ["-k"] : [])
            + ["-j\(Kbuild.processors)"] + targets
    }

    /// Runs make; a make that runs but fails is a result, not an error.
    public func make(_ targets: [String], variables: [String] = [], keepGoing: Bool = false)
        throws(KernelError) -> CommandResult
    {
        do {
            return try Command.run(arguments(targets, variables: variables, keepGoing: keepGoing))
        } catch {
            throw KernelError(.compileFailed, "cannot run make: \(error.description)", cause: error)
        }
    }
}
