// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TargetKernel

extension LivepatchModule {
    /// Links the module with kbuild against the target's headers.
    /// Unresolved klp symbols are expected, so modpost only warns.
    public static func link(
        _ plan: Plan, moduleName: String, registration: String, headers: String,
        compiler: String, root: BuildRoot? = nil, delayedObjtool: Bool = false, directory: String
    ) throws(BuildError) -> String {
        do {
            try FileSystem.makeDirectories(directory)
            var objects = ["\(moduleName)-main.o"]
            for (file, object) in plan.objects {
                var object = object
                // Suture's own notes are not for the kernel (modpost refuses
                // non-allocated sections it does not know).
                if let manifest = object.section(named: ".suture.manifest") {
                    try object.removeSections([manifest])
                }
                if delayedObjtool { LivepatchModule.setAsideObjtoolOutput(&object) }
                let path = Path.join(directory, file)
                try ELFWriter.write(object, to: path)
                // modpost reads every object's kbuild command record.
                try FileSystem.write(
                    Path.join(directory, ".\(file).cmd"),
                    "savedcmd_\(path) := suture build (prebuilt patch object)\n\nsource_\(path) := \(path)\n\ndeps_\(path) := \\\n\n\(path): $(deps_\(path))\n\n$(deps_\(path)):\n"
                )
                objects.append(file)
            }
            try FileSystem.write(Path.join(directory, "\(moduleName)-main.c"), registration)
            try FileSystem.write(
                Path.join(directory, "Makefile"),
                "obj-m := \(moduleName).o\n\(moduleName)-y := \(objects.joined(separator: " "))\n")
        } catch let error as ELFError {
            throw BuildError(.io, error.description, cause: error)
        } catch {
            throw BuildError(
                .io, "writing the module sources in \(directory): \(error)", cause: error as? any SutureError)
        }
        let variables = ["KBUILD_MODPOST_WARN=1"]
        let result: CommandResult
        do {
            result = try ExternalModule(headers: headers, directory: directory, compiler: compiler, root: root)
                .make(["modules"], variables: variables)
        } catch {
            throw BuildError(.linkFailed, error.description, cause: error)
        }
        let ko = Path.join(directory, "\(moduleName).ko")
        guard result.termination.succeeded, FileSystem.exists(ko) else {
            throw BuildError(
                .linkFailed,
                "kbuild could not link the module (\(result.termination)):\n\(Command.tail(result.stdoutText + result.stderrText, lines: 25))"
            )
        }
        return ko
    }
}

extension LivepatchModule {
    /// What objtool writes into an object it processed.
    static let objtoolSections: Set<String> = [
        ".orc_unwind", ".orc_unwind_ip", ".call_sites", ".return_sites", ".retpoline_sites",
        ".static_call_sites", ".ibt_endbr_seal", ".cfi_sites", "__mcount_loc",
    ]

    /// With objtool delayed to a module's link (IBT or clang LTO: Debian's
    /// 6.12 and 7.x), kbuild runs it once on the linked module. Objects of
    /// a single-object module were already processed when the tree compiled
    /// them; objtool then refuses to add its sections again (6.12 warns and
    /// leaves the registration code without return sites, so its returns
    /// trip "Unpatched return thunk"; 7.x fails). Renamed under `.discard.`,
    /// the old output is invisible to objtool and dropped by the module
    /// linker script, and objtool describes all the module's code afresh.
    public static func setAsideObjtoolOutput(_ object: inout RelocatableObject) {
        for i in object.sections.indices {
            let name = object.sections[i].name
            let base = name.hasPrefix(".rela") ? String(name.dropFirst(5)) : name
            guard objtoolSections.contains(base) else { continue }
            object.sections[i].name = (name.hasPrefix(".rela") ? ".rela" : "") + ".discard.suture" + base
        }
    }
}
