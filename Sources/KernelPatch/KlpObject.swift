// SPDX-License-Identifier: GPL-2.0-only
import TargetKernel

/// A klp object: the part of the running kernel a patched function lives
/// in, vmlinux or a module (`struct klp_object`, whose NULL name means
/// vmlinux).
public enum KlpObject: Sendable, Hashable, CustomStringConvertible {
    case vmlinux
    /// A module, by its name with dashes made underscores.
    case module(String)

    /// `vmlinux` or the module's name: the OBJ of `.klp.sym.OBJ.*` and
    /// `.klp.rela.OBJ.*`.
    public var name: String {
        switch self {
        case .vmlinux: "vmlinux"
        case .module(let name): name
        }
    }

    public var description: String { name }

    public var isModule: Bool { self != .vmlinux }

    /// The klp object a name stands for (`vmlinux`, else a module).
    public init(name: String) {
        self = name == "vmlinux" ? .vmlinux : .module(name)
    }

    /// The klp object an object is built into: kbuild compiles module code
    /// with `-DMODULE` and names the module in KBUILD_MODNAME.
    public static func of(_ object: String, command: String) throws(KernelError) -> KlpObject {
        let words = command.split(separator: " ")
        guard words.contains("-DMODULE") else { return .vmlinux }
        for w in words where w.hasPrefix("-DKBUILD_MODNAME=") {
            var name = w.dropFirst("-DKBUILD_MODNAME=".count)
            name = name.drop { $0 == "'" || $0 == "\"" || $0 == "\\" }
            while let last = name.last, last == "'" || last == "\"" || last == "\\" { name = name.dropLast() }
            return .module(String(name).replacingDashes())
        }
        throw KernelError(.compileFailed, "\(object) is module code, but its compile command names no KBUILD_MODNAME")
    }
}

/// `"vmlinux"` or a module's name where a klp object is expected; kept so
/// that code written against the former `String` targets still reads.
extension KlpObject: ExpressibleByStringLiteral {
    public init(stringLiteral name: String) {
        self.init(name: name)
    }
}
