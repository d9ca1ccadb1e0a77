// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Foundation
import Livepatch
import Platform

/// Module files written with Suture's ELF writer: a `.modinfo` and a
/// `.gnu.linkonce.this_module`, which is all the manager reads. The fake
/// kernel "loads" them; no real kernel ever sees them.
enum SyntheticModule {
    static func bytes(_ modinfo: [(String, String)], linkonce: Bool = true) throws -> [UInt8] {
        var object = RelocatableObject(machine: Machine.x86_64)
        var info: [UInt8] = []
        for (key, value) in modinfo { info += Array("\(key)=\(value)".utf8) + [0] }
        _ = object.add(.progbits(".modinfo", flags: SectionFlags.alloc, info))
        if linkonce {
            _ = object.add(
                .progbits(
                    ".gnu.linkonce.this_module", flags: SectionFlags.alloc | SectionFlags.write,
                    alignment: 64, [UInt8](repeating: 0, count: 64)))
        }
        _ = object.add(
            ObjectSection(
                name: ".symtab", type: SectionType.symtab, flags: 0, alignment: 8,
                entrySize: 24, content: .symbolTable))
        _ = object.add(ObjectSection(name: ".strtab", type: SectionType.strtab, flags: 0, content: .symbolNames))
        _ = object.add(ObjectSection(name: ".shstrtab", type: SectionType.strtab, flags: 0, content: .sectionNames))
        return try ELFWriter.write(object)
    }

    static let release = "6.1.0-57-amd64"

    /// A livepatch module's modinfo, as modpost writes it.
    static func livepatch(
        _ name: String, release: String = release, replace: Bool? = nil,
        parameters: [(String, String)] = []
    ) -> [(String, String)] {
        var info: [(String, String)] = [("description", "test patch"), ("livepatch", "Y"), ("license", "GPL")]
        if let replace { info.append((ModuleFile.replaceKey, replace ? "Y" : "N")) }
        for (name, type) in parameters { info.append(("parmtype", "\(name):\(type)")) }
        info += [
            ("depends", ""), ("retpoline", "Y"), ("name", name),
            ("vermagic", "\(release) SMP preempt mod_unload modversions "),
        ]
        return info
    }

    /// Writes a livepatch module into `directory` and returns its path.
    static func write(
        _ name: String, in directory: String, fileName: String? = nil, release: String = release,
        replace: Bool? = nil, parameters: [(String, String)] = []
    ) throws -> String {
        let path = Path.join(directory, fileName ?? "\(name).ko")
        try FileSystem.write(path, bytes(livepatch(name, release: release, replace: replace, parameters: parameters)))
        return path
    }
}
