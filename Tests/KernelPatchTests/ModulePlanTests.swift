// SPDX-License-Identifier: GPL-2.0-only
import ELF
import KernelPatch
import PatchCore
import Platform
import TargetKernel
import TestSupport
import Testing

/// Module planning on a small object pair, with made-up exports and
/// kallsyms: who resolves each reference, and the redirect names.
@Suite struct ModulePlanTests {
    static let original = """
        extern int exported_helper(int);
        extern int private_helper(int);
        static int counter;
        __attribute__((noinline)) static int twice(int x) { counter++; return 2 * x; }
        int compute(int x) { return exported_helper(x) + private_helper(x) + twice(x); }
        """
    /// `compute` changes; `twice`, `counter` and the helpers stay.
    static let patched = original.replacing("+ twice(x); }", with: "+ twice(x) + 1; }")

    /// The diff of the pair, as the plan's input.
    static func patchedObject(target: KlpObject = .vmlinux, in scratch: Scratch) throws -> PatchedObject {
        var objects: [String] = []
        for (name, source) in [("original", original), ("patched", patched)] {
            let file = try scratch.write("\(name)/plan.c", source)
            let object = scratch.file("\(name)/plan.o")
            _ = try Command.output([
                "gcc", "-O2", "-c", "-fno-pic", "-ffunction-sections", "-fdata-sections",
                "-o", object, file,
            ])
            objects.append(object)
        }
        let result = try ObjectDiff.run(
            original: ELFFile.open(objects[0]), patched: ELFFile.open(objects[1]),
            rules: .userSpace())
        let patch = try #require(result.patch, "no patch: \(result.refusals)")
        return PatchedObject(object: "kernel/plan.o", target: target, result: result, patch: patch)
    }

    static func kallsyms(_ lines: [String]) throws -> KallsymsTable {
        try KallsymsTable(text: Array((lines.joined(separator: "\n") + "\n").utf8), source: "test")
    }

    @Test func exportedStayOrdinaryAndTheRestBecomeKlpSymbols() throws {
        let scratch = try Scratch("suture-plan")
        let patched = try Self.patchedObject(in: scratch)
        let exports = ExportedSymbols(symbols: [
            "exported_helper": .init(owner: "vmlinux", namespace: "HELPERS")
        ])
        let table = try Self.kallsyms([
            "ffffffff81000000 T _text",
            "ffffffff81001000 T private_helper",
            "ffffffff81002000 t twice",
            "ffffffff81002100 T compute",
            "ffffffff81003000 b counter",
            "ffffffff81004000 T exported_helper",
        ])
        var asked: [String] = []
        let plan = try LivepatchModule.plan([patched], exports: exports, positions: SymbolPositions(table: table)) {
            (module: String) throws(BuildError) -> ModuleSymbols in
            asked.append(module)
            throw BuildError(.io, "no module expected")
        }
        #expect(asked.isEmpty, "vmlinux code looked up a module")
        #expect(plan.exportedReferences == 1)
        #expect(plan.namespaces == ["HELPERS"])
        let names = plan.klpSymbols.map(\.symbolName)
        #expect(names.contains(".klp.sym.vmlinux.private_helper,0"), "\(names)")
        #expect(names.contains(".klp.sym.vmlinux.twice,0"), "\(names)")
        #expect(!names.contains { $0.contains("exported_helper") }, "\(names)")
        #expect(plan.klpSymbols.allSatisfy { $0.target == .vmlinux })
        #expect(plan.redirects.count == 1)
        let redirect = try #require(plan.redirects.first)
        #expect(redirect.oldName == "compute")
        #expect(redirect.newSymbol == "livepatch_compute")
        #expect(redirect.target == .vmlinux)
        #expect(redirect.sympos == 0)
        // The patch object refers to the klp symbols by their new names.
        let object = try #require(plan.objects.first?.object)
        #expect(object.symbols.contains { $0.name == ".klp.sym.vmlinux.private_helper,0" && $0.place == .undefined })
        #expect(object.symbols.contains { $0.name == "livepatch_compute" && $0.place != .undefined })
    }

    @Test func aLocalNameTwiceInKallsymsGetsItsPosition() throws {
        let scratch = try Scratch("suture-plan")
        let patched = try Self.patchedObject(in: scratch)
        // Two static `twice`, far apart; the object's own neighbour
        // (compute) sits by the second.
        let filler = (0..<200).map { "ffffffff8101\(String(1000 + $0)) t filler_\($0)" }
        let table = try Self.kallsyms(
            ["ffffffff81000000 T _text", "ffffffff81000100 t twice"] + filler + [
                "ffffffff81100000 T private_helper",
                "ffffffff81100100 T exported_helper",
                "ffffffff81100200 t twice",
                "ffffffff81100300 T compute",
            ])
        let exports = ExportedSymbols(symbols: ["exported_helper": .init(owner: "vmlinux")])
        let plan = try LivepatchModule.plan([patched], exports: exports, positions: SymbolPositions(table: table)) {
            (module: String) throws(BuildError) -> ModuleSymbols in throw BuildError(.io, "no module expected")
        }
        #expect(plan.klpSymbols.map(\.symbolName).contains(".klp.sym.vmlinux.twice,2"), "\(plan.klpSymbols)")
    }

    @Test func anUnknownSymbolIsUnresolved() throws {
        let scratch = try Scratch("suture-plan")
        let patched = try Self.patchedObject(in: scratch)
        let table = try Self.kallsyms(["ffffffff81000000 T _text", "ffffffff81002100 T compute"])
        let error = #expect(throws: BuildError.self) {
            try LivepatchModule.plan(
                [patched], exports: ExportedSymbols(symbols: [:]),
                positions: SymbolPositions(table: table)
            ) {
                (module: String) throws(BuildError) -> ModuleSymbols in throw BuildError(.io, "no module expected")
            }
        }
        #expect(error?.kind == .unresolvedSymbol)
        #expect(error?.description.contains("kernel/plan.o") == true)
    }

    @Test func moduleCodeAsksForItsModule() throws {
        let scratch = try Scratch("suture-plan")
        let patched = try Self.patchedObject(target: .module("plan_mod"), in: scratch)
        let table = try Self.kallsyms(["ffffffff81000000 T _text"])
        var asked: [String] = []
        let error = #expect(throws: BuildError.self) {
            try LivepatchModule.plan(
                [patched], exports: ExportedSymbols(symbols: [:]),
                positions: SymbolPositions(table: table)
            ) {
                (module: String) throws(BuildError) -> ModuleSymbols in
                asked.append(module)
                throw BuildError(.unsupportedChange, "the module \(module) is not installed")
            }
        }
        #expect(asked == ["plan_mod"])
        #expect(error?.kind == .unsupportedChange)
    }
}
