// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// The object diff as one pipeline of typed stages over immutable ELF
/// models: correlate → compare → select → emit.
public enum ObjectDiff {
    /// The outcome of a diff: the report, and the patch object unless
    /// something was refused or nothing changed.
    public struct Result: Sendable {
        public let original: ObjectIndex
        public let patched: ObjectIndex
        public let correlation: Correlation
        public let comparison: Comparison
        public let selection: Selection
        public let directives: PatchDirectives
        public let patch: PatchObject?

        public var refusals: [Refusal] { selection.refusals }

        /// Whether any function changed or is new.
        public var hasFunctionalChange: Bool {
            comparison.verdicts.contains { $0.kind == .function && ($0.status == .changed || $0.status == .new) }
        }

        public var report: DiffReport {
            DiffReport(
                functions: comparison.verdicts.filter { $0.kind == .function },
                data: comparison.verdicts.filter { $0.kind == .data },
                refusals: selection.refusals, included: patch?.includedSections ?? [])
        }
    }

    public static func run(original: ELFFile, patched: ELFFile, rules: TargetRules) throws(PatchCoreError) -> Result {
        let o = try ObjectIndex(original, rules: rules)
        let p = try ObjectIndex(patched, rules: rules)
        let originalTables = try o.specialTables()
        let patchedTables = try p.specialTables()
        let directives = rules.readsDirectives ? try PatchDirectives.read(p) : PatchDirectives()
        let correlation = Correlation.correlate(o, p)
        let comparison = Comparer(
            original: o, patched: p, correlation: correlation,
            originalTables: originalTables, patchedTables: patchedTables
        ).run()
            .applying(directives, patched: p)
        let selection = Selector(
            original: o, patched: p, correlation: correlation, comparison: comparison,
            tables: patchedTables, originalTables: originalTables, directives: directives
        ).run()
        var patch: PatchObject?
        if selection.refusals.isEmpty && !selection.elements.isEmpty {
            patch = try Emitter(
                original: o, patched: p, correlation: correlation, comparison: comparison,
                selection: selection, tables: patchedTables, directives: directives
            ).run()
        }
        return Result(
            original: o, patched: p, correlation: correlation, comparison: comparison,
            selection: selection, directives: directives, patch: patch)
    }
}

/// The `suture diff --json` report.
public struct DiffReport: Sendable {
    public let functions: [ElementVerdict]
    public let data: [ElementVerdict]
    public let refusals: [Refusal]
    public let included: [String]

    public var json: JSON {
        func verdicts(_ list: [ElementVerdict]) -> JSON {
            .array(
                list.sorted { ($0.name, $0.status.rawValue) < ($1.name, $1.status.rawValue) }.map {
                    .object([
                        ("name", .string($0.name)), ("status", .string($0.status.rawValue)),
                        ("reason", .string($0.reason)),
                    ])
                })
        }
        return .object([
            ("functions", verdicts(functions)),
            ("data", verdicts(data)),
            (
                "refusals",
                .array(refusals.map { .object([("symbol", .string($0.symbol)), ("reason", .string($0.reason))]) })
            ),
            ("included", .strings(included)),
        ])
    }
}
