// SPDX-License-Identifier: GPL-2.0-only
import Platform
import SystemPackage

/// One line of `/proc/modules`: `name size refcount deps state address`.
public struct LoadedModule: Sendable, Equatable {
    public var name: String
    public var size: Int
    public var referenceCount: Int
    /// `Live`, `Loading` or `Unloading`.
    public var state: String
    /// The load address as text; `0x0000000000000000` when hidden from the caller.
    public var address: String
    /// The module's taint letters and state marks, from the trailing
    /// `(…)`, e.g. `OEK`; empty when untainted.
    public var flags: String

    public init(name: String, size: Int, referenceCount: Int, state: String, address: String, flags: String = "") {
        self.name = name
        self.size = size
        self.referenceCount = referenceCount
        self.state = state
        self.address = address
        self.flags = flags
    }

    /// Whether the kernel marked it as a livepatch module: taint K, which
    /// `check_modinfo_livepatch` sets for modinfo `livepatch=Y`.
    public var isLivepatch: Bool { flags.contains("K") }

    /// Parses `/proc/modules` (`m_show` in kernel/module/procfs.c), newest
    /// module first, as the kernel lists them. Lines it cannot read are skipped.
    public static func parse(_ text: String) -> [LoadedModule] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5, let size = Int(fields[1]) else { return nil }
            var flags = ""
            if let last = fields.last, fields.count > 6, last.hasPrefix("("), last.hasSuffix(")") {
                flags = String(last.dropFirst().dropLast())
            }
            return LoadedModule(
                name: String(fields[0]), size: size, referenceCount: Int(fields[2]) ?? -1,
                state: String(fields[4]), address: fields.count > 5 ? String(fields[5]) : "",
                flags: flags)
        }
    }
}

/// The calls through which the manager changes the kernel: the two module
/// system calls and writes to sysfs attributes, each of which the kernel
/// acts on before it returns. A protocol, so unit tests run the manager
/// against a fake kernel.
public protocol KernelCalls: Sendable {
    /// `finit_module(2)` on an open module file.
    func load(_ fd: FileDescriptor, parameters: String) throws(PlatformError)
    /// `delete_module(2)` with `O_NONBLOCK`: fails with EWOULDBLOCK
    /// while the module is in use rather than waiting.
    func remove(_ name: String) throws(PlatformError)
    /// Writes a sysfs attribute such as `enabled` or `force` with one
    /// `write(2)`; never creates the file.
    func writeAttribute(_ path: String, _ value: String) throws(PlatformError)
}

/// The real kernel.
public struct LiveKernelCalls: KernelCalls {
    public init() {}

    public func load(_ fd: FileDescriptor, parameters: String) throws(PlatformError) {
        try Kernel.finitModule(fd: fd, parameters: parameters)
    }

    public func remove(_ name: String) throws(PlatformError) {
        try Kernel.deleteModule(name: name)
    }

    public func writeAttribute(_ path: String, _ value: String) throws(PlatformError) {
        try KernelFiles.writeAttribute(path, value)
    }
}
