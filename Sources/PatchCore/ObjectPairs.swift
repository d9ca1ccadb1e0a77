// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// One object built twice: from the original source and from the patched one.
public struct ObjectPair: Sendable, Equatable {
    /// The name messages and refusals give the object (a kbuild object such
    /// as `fs/proc/cmdline.o`, or a program's source file).
    public let object: String
    public let original: String
    public let patched: String

    public init(object: String, original: String, patched: String) {
        self.object = object
        self.original = original
        self.patched = patched
    }
}

extension ObjectDiff {
    /// Every pair's diff, and every refusal of every pair.
    public struct PairResults: Sendable {
        public var results: [(pair: ObjectPair, result: Result)] = []
        /// All refusals at once, each named by its object.
        public var refusals: [RefusedChange] = []
    }

    /// Diffs every pair under `rules` and collects the refusals of all of
    /// them, so that a build lists every change it cannot patch at once.
    /// An object that cannot be read throws `unreadable`; one that cannot be
    /// diffed throws the diff's own error; both name the object and keep
    /// the inner error as their cause.
    public static func run(_ pairs: [ObjectPair], rules: TargetRules) throws(PatchCoreError) -> PairResults {
        try run(pairs, rules: { _ in rules })
    }

    /// As `run(_:rules:)`, with the rules chosen per pair (a kernel module's
    /// objects are diffed under slightly different rules than vmlinux's).
    public static func run(_ pairs: [ObjectPair], rules: (ObjectPair) -> TargetRules) throws(PatchCoreError)
        -> PairResults
    {
        var all = PairResults()
        for pair in pairs {
            let original: ELFFile
            let patched: ELFFile
            do {
                original = try ELFFile.open(pair.original)
                patched = try ELFFile.open(pair.patched)
            } catch {
                throw PatchCoreError(.unreadable, "\(pair.object): \(error.description)", cause: error)
            }
            let result: Result
            do {
                result = try run(original: original, patched: patched, rules: rules(pair))
            } catch {
                throw PatchCoreError(error.kind, "\(pair.object): \(error.description)", cause: error)
            }
            all.refusals += result.refusals.map {
                RefusedChange(object: pair.object, function: $0.symbol, reason: $0.reason)
            }
            all.results.append((pair, result))
        }
        return all
    }
}
