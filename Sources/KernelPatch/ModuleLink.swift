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
        // With objtool delayed to the module's link (IBT or clang LTO: 6.12 and 7.x here), objtool
        // would run again on objects it already processed in the tree: 6.12's skips such a file
        // with a warning, 7.x's fails. Skip it, as 6.12 does; the objects keep their own output.
        var variables = ["KBUILD_MODPOST_WARN=1"]
        let processed = [".orc_unwind", ".call_sites", ".return_sites", ".retpoline_sites"]
        if delayedObjtool, plan.objects.contains(where: { o in processed.contains { o.1.section(named: $0) != nil } }) {
            variables.append("objtool-enabled=")
        }
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
