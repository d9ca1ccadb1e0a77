// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel

extension KernelBuild {
    /// The run-pre check (`RunPre`): every function the patch replaces and
    /// every function of an original object that its klp relocations point
    /// into, compared with the target's shipped code. Every mismatch at
    /// once refuses the build.
    static func verify(
        _ context: BuildContext, _ patches: [PatchedObject], _ plan: LivepatchModule.Plan, _ symbols: Symbols
    ) throws(BuildError) -> [RunPre.Verification] {
        let entrySizes = SpecialSectionProbe.entrySizes(
            headers: context.headers, compiler: context.tree.kbuild.compiler,
            cacheDirectory: OriginalObjectCache(tree: context.tree, cacheRoot: context.options.cacheRoot).directory)
        var shipped: ShippedCode?
        var checks: [RunPre.Verification] = []
        var mismatches: [RunPre.Mismatch] = []
        var seen = Set<String>()
        for p in patches {
            let original = p.result.original
            let sites = RewrittenSites(original.file, entrySizes: entrySizes)
            let code =
                shipped
                ?? ShippedCode(
                    kernel: context.options.kernel, table: symbols.table, image: symbols.image,
                    architecture: original.rules.architecture, entrySizes: entrySizes)
            shipped = code
            var wanted: [(name: String, sympos: Int, role: RunPre.Role)] = plan.redirects
                .filter { $0.object == p.object }.map { ($0.oldName, $0.sympos, .replaced) }
            for k in plan.klpSymbols
            where k.target == p.target && p.patch.references.contains(where: { $0.name == k.name }) {
                wanted.append((k.name, k.sympos, .referenced))
            }
            for w in wanted where seen.insert("\(p.target.name) \(w.name),\(w.sympos)").inserted {
                let functions = original.elements.filter { $0.kind == .function && $0.name == w.name && $0.size > 0 }
                guard functions.count == 1, let element = functions.first else { continue }
                // A weak definition the patch only refers to need not be the
                // one the kernel linked (an architecture's strong one wins);
                // a replaced one must be, so it is checked.
                if w.role == .referenced && original.file.symbols[element.symbol].binding == SymbolBinding.weak {
                    continue
                }
                // Static call trampolines are rewritten whole when their
                // target changes (`arch_static_call_transform`).
                if original.file.sections[element.section].name == ".static_call.text" { continue }
                var (mask, functionSites, relocationBytes) = RunPre.mask(of: element, in: original, sites: sites)
                let size = Int(element.size)
                let found = try code.code(of: w.name, sympos: w.sympos, in: p.target, size: size)
                for field in found.relocationFields {
                    for i in max(0, field.lowerBound)..<min(size, field.upperBound) where !mask[i] {
                        mask[i] = true
                        relocationBytes += 1
                    }
                }
                for site in found.sites where !functionSites.contains(where: { $0.offset == site.offset }) {
                    for i in Int(site.offset)..<min(size, Int(site.offset) + site.length) { mask[i] = true }
                    functionSites.append(site)
                }
                functionSites.sort { $0.offset < $1.offset }
                let bytes = original.bytes(of: element)
                if let offset = RunPre.firstDifference(bytes, found.bytes, mask: mask) {
                    mismatches.append(
                        RunPre.Mismatch(
                            target: p.target, function: w.name, object: p.object, offset: offset, original: bytes,
                            shipped: found.bytes, mask: mask, against: found.against))
                    continue
                }
                checks.append(
                    RunPre.Verification(
                        target: p.target, function: w.name, sympos: w.sympos, object: p.object, role: w.role,
                        expected: found.bytes, mask: mask, sites: functionSites, relocationBytes: relocationBytes,
                        against: found.against, place: found.place))
            }
        }
        guard mismatches.isEmpty else {
            throw BuildError(
                .codeMismatch,
                "run-pre check: the original code of \(mismatches.count) function(s) is not the code \(context.options.kernel.release) ships, so the source, configuration or compiler is not the kernel's; no module written:\n"
                    + mismatches.map { "  " + $0.description }.joined(separator: "\n"))
        }
        context.progress(
            "run-pre check: \(checks.count) function(s) match the shipped code outside relocations and rewritten sites")
        return checks
    }
}
