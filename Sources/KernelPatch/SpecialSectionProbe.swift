// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TargetKernel

/// Measures the entry sizes of the kernel's special sections from the
/// target's own headers, so the diff splits `__bug_table`,
/// `.altinstructions` and the rest correctly on any kernel version, not
/// only the one the defaults were written for. Each size is one tiny
/// object compiled by kbuild; a structure a kernel does not have is skipped.
enum SpecialSectionProbe {
    static let probes: [(section: String, file: String, source: String)] = [
        (
            "__bug_table", "bug",
            "#include <linux/bug.h>\nconst unsigned long suture_probe_size = sizeof(struct bug_entry);\n"
        ),
        (
            "__jump_table", "jump",
            "#include <linux/jump_label.h>\nconst unsigned long suture_probe_size = sizeof(struct jump_entry);\n"
        ),
        (
            "__ex_table", "extable",
            "#include <linux/extable.h>\n#include <asm/extable.h>\nconst unsigned long suture_probe_size = sizeof(struct exception_table_entry);\n"
        ),
        (
            ".altinstructions", "alt",
            "#include <asm/alternative.h>\nconst unsigned long suture_probe_size = sizeof(struct alt_instr);\n"
        ),
        (
            ".parainstructions", "para",
            "#include <asm/paravirt_types.h>\nconst unsigned long suture_probe_size = sizeof(struct paravirt_patch_site);\n"
        ),
        (
            ".static_call_sites", "scall",
            "#include <linux/static_call_types.h>\nconst unsigned long suture_probe_size = sizeof(struct static_call_site);\n"
        ),
        (
            ".orc_unwind", "orc",
            "#include <asm/orc_types.h>\nconst unsigned long suture_probe_size = sizeof(struct orc_entry);\n"
        ),
    ]

    /// Section → entry size, measured once per tree and cached.
    static func entrySizes(
        headers: String, compiler: String, root: BuildRoot? = nil, cacheDirectory: String
    ) -> [String: Int] {
        let cachePath = Path.join(cacheDirectory, "entry-sizes")
        if let text = FileSystem.readTextIfPresent(cachePath) {
            var sizes: [String: Int] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let n = Int(parts[1]) { sizes[String(parts[0])] = n }
            }
            if !sizes.isEmpty { return sizes }
        }
        guard let dir = try? TemporaryDirectory(prefix: "suture-probe") else { return [:] }
        defer { dir.remove() }
        for probe in probes { try? FileSystem.write(Path.join(dir.path, "\(probe.file).c"), probe.source) }
        try? FileSystem.write(
            Path.join(dir.path, "Makefile"), "obj-m := \(probes.map { "\($0.file).o" }.joined(separator: " "))\n")
        _ = try? ExternalModule(headers: headers, directory: dir.path, compiler: compiler, root: root)
            .make(probes.map { "\($0.file).o" }, keepGoing: true)
        var sizes: [String: Int] = [:]
        for probe in probes {
            guard let file = try? ELFFile.open(Path.join(dir.path, "\(probe.file).o")),
                let symbol = file.symbols.first(where: { $0.name == "suture_probe_size" }),
                let section = symbol.definingSection, symbol.size == 8
            else { continue }
            let data = file.data(file.sections[section])
            guard Int(symbol.value) + 8 <= data.count else { continue }
            sizes[probe.section] = Int(data.u64(at: Int(symbol.value)))
        }
        if !sizes.isEmpty {
            try? FileSystem.makeDirectories(cacheDirectory)
            let text = sizes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "\n") + "\n"
            try? FileSystem.writeAtomically(cachePath, Array(text.utf8))
        }
        return sizes
    }
}
