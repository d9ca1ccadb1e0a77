// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// A kernel module file (`.ko`, also compressed) as Suture checks it before
/// loading: its name, vermagic, livepatch flag, parameters and Suture's own
/// modinfo keys.
public struct ModuleFile: Sendable {
    /// Suture's modinfo key recording whether the patch replaces all earlier
    /// ones (`klp_patch.replace`). Kernels before 6.11 have no sysfs
    /// attribute for it, so this is the only way to know.
    public static let replaceKey = "suture.replace"

    public let path: String
    /// The kernel's module name (modinfo `name`, else from the file name).
    public let name: String
    /// Modinfo `vermagic`, e.g. `6.1.0-57-amd64 SMP preempt mod_unload modversions `.
    public let vermagic: String?
    /// Modinfo `livepatch=Y`: the kernel marks such modules with taint K.
    public let isLivepatch: Bool
    /// Modinfo `suture.replace`, or nil when the module does not say.
    public let replace: Bool?
    /// Declared parameters (modinfo `parmtype`): name → type.
    public let parameterTypes: [(name: String, type: String)]
    /// Every modinfo entry, in order.
    public let modinfo: [(key: String, value: String)]
    /// The file, read once, and the image the kernel gets, sealed.
    let image: ModuleImage

    /// Reads and checks that `path` is a kernel module. It need not be a
    /// livepatch module: see `requireLivepatch(runningRelease:)`.
    public static func inspect(_ path: String) throws(LivepatchError) -> ModuleFile {
        switch FileSystem.kind(path) {
        case .missing:
            throw LivepatchError(.missingFile, "\(path): no such file")
        case .directory:
            throw LivepatchError(.notModule, "\(path) is a directory, not a kernel module")
        default:
            break
        }
        let image = try ModuleImage.read(path)
        let elf = image.elf
        guard elf.header.type == FileType.relocatable else {
            throw LivepatchError(
                .notModule,
                "\(path) is not a kernel module: it is an ELF file of type \(elf.header.type), not a relocatable object"
            )
        }
        guard elf.section(named: ".gnu.linkonce.this_module") != nil else {
            throw LivepatchError(
                .notModule,
                "\(path) is not a kernel module: it has no .gnu.linkonce.this_module section (an object file that was never linked by modpost?)"
            )
        }
        let modinfo = elf.modinfo()
        func value(_ key: String) -> String? { modinfo.first { $0.key == key }?.value }
        let fileName = ModuleName.normalized(path)
        let declared: [(String, String)] = modinfo.filter { $0.key == "parmtype" }.compactMap { entry in
            guard let colon = entry.value.firstIndex(of: ":") else { return nil }
            return (String(entry.value[..<colon]), String(entry.value[entry.value.index(after: colon)...]))
        }
        return ModuleFile(
            path: path,
            name: value("name") ?? fileName,
            vermagic: value("vermagic"),
            isLivepatch: value("livepatch") == "Y",
            replace: value(replaceKey).flatMap(Self.boolean),
            parameterTypes: declared,
            modinfo: modinfo,
            image: image)
    }

    /// The appended signature (`sign-file`), nil for an unsigned module.
    public var signature: ModuleSignature? { image.signature }

    /// The kernel release the module was built for: vermagic's first word.
    public var vermagicRelease: String? {
        vermagic?.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// Refuses a module that is not a livepatch module or was built for
    /// another release than `runningRelease` (what `uname -r` prints).
    ///
    /// The kernel compares only the part of vermagic after the release when
    /// the module has symbol CRCs (`same_magic` in kernel/module/version.c),
    /// so a patch built for another release of the same series would load
    /// and patch code it was never built against. Suture checks the release.
    public func requireLivepatch(runningRelease: String) throws(LivepatchError) {
        try requireLivepatch(release: runningRelease, running: true)
    }

    /// The same check against `release`, the running kernel's or, for
    /// `suture install --kernel`, another installed one.
    public func requireLivepatch(release wanted: String, running: Bool) throws(LivepatchError) {
        let kernel = running ? "the running kernel" : "the target kernel"
        guard isLivepatch else {
            throw LivepatchError(
                .notLivepatch,
                "\(path) is a kernel module (\(name)) but not a livepatch module: its modinfo has no livepatch=Y. Load ordinary modules with modprobe or insmod."
            )
        }
        guard let vermagic, let release = vermagicRelease else {
            throw LivepatchError(
                .vermagic, "\(path) has no vermagic in its modinfo, so it cannot be matched to \(kernel) \(wanted)")
        }
        guard release == wanted else {
            throw LivepatchError(
                .vermagic,
                "\(path) was built for kernel \(release) (vermagic \"\(vermagic.trimmingWhitespace())\"), but \(kernel) is \(wanted)"
            )
        }
    }

    /// The parameter string for `finit_module`, from `NAME=VALUE` (or bare
    /// `NAME`) arguments, checked against the module's declared parameters.
    ///
    /// The kernel splits it in `next_arg` (lib/cmdline.c): values with
    /// spaces are quoted; a value cannot contain a double quote.
    public func parameterString(_ arguments: [String]) throws(LivepatchError) -> String {
        var parts: [String] = []
        let known = parameterTypes.map { ModuleName.canonical($0.name) }
        for argument in arguments {
            let name: Substring
            let value: Substring?
            if let eq = argument.firstIndex(of: "=") {
                name = argument[..<eq]
                value = argument[argument.index(after: eq)...]
            } else {
                name = Substring(argument)
                value = nil
            }
            guard !name.isEmpty,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") })
            else {
                throw LivepatchError(.parameter, "invalid module parameter \"\(argument)\": expected NAME=VALUE")
            }
            guard known.contains(ModuleName.canonical(String(name))) else {
                let list =
                    parameterTypes.isEmpty
                    ? "it has none" : "its parameters: " + parameterTypes.map(\.name).joined(separator: ", ")
                throw LivepatchError(.parameter, "\(self.name) has no parameter \"\(name)\" (\(list))")
            }
            guard let value else {
                parts.append(String(name))
                continue
            }
            guard !value.contains("\""), !value.contains(where: { $0 == "\n" || $0 == "\0" }) else {
                throw LivepatchError(
                    .parameter, "module parameter \(name): a value cannot contain a double quote or a newline")
            }
            if value.isEmpty || value.contains(where: { $0 == " " || $0 == "\t" }) {
                parts.append("\(name)=\"\(value)\"")
            } else {
                parts.append("\(name)=\(value)")
            }
        }
        return parts.joined(separator: " ")
    }

    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "y", "yes", "1", "true": return true
        case "n", "no", "0", "false": return false
        default: return nil
        }
    }
}

/// Module names as the kernel spells them.
public enum ModuleName {
    /// The kernel's name for a module given as a path, a file name
    /// (`livepatch-foo.ko`, `.ko.xz`) or a module name: the base name
    /// without extension, with `-` as `_` (as kbuild and `klp` objects do).
    public static func normalized(_ given: String) -> String {
        var base = Path.base(of: given)
        for suffix in [".xz", ".zst", ".gz"] where base.hasSuffix(suffix) {
            base.removeLast(suffix.count)
        }
        if base.hasSuffix(".ko") { base.removeLast(3) }
        return canonical(base)
    }

    /// `-` as `_`, the form the kernel compares (`parameq`, module names).
    public static func canonical(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }
}
