// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// What the patch author asked for inside the patched source, through
/// kpatch's macros (`kpatch-macros.h`): each macro leaves a pointer in a
/// section of its own. Read from the patched object before comparing.
///
/// | section | entry | meaning |
/// |---|---|---|
/// | `.kpatch.ignore.functions` | pointer to a function | not part of the patch, even if it changed |
/// | `.kpatch.ignore.sections` | pointer to a section name | nothing in that section is part of the patch |
/// | `.kpatch.force` | pointer to a function | patch it without a consistency check (refused) |
/// | `.kpatch.callbacks.<stage>` | pointer to a function | a klp callback of the patched object |
public struct PatchDirectives: Sendable {
    public enum Stage: String, Sendable, CaseIterable {
        case prePatch = "pre_patch"
        case postPatch = "post_patch"
        case preUnpatch = "pre_unpatch"
        case postUnpatch = "post_unpatch"
    }

    /// A callback: its stage and the patched function that implements it.
    public struct Callback: Sendable, Equatable {
        public let stage: Stage
        public let function: String
    }

    /// Patched elements (functions) excluded from the patch.
    public var ignoredElements = Set<Int>()
    public var ignoredSections: [String] = []
    /// Functions marked with `KPATCH_FORCE_UNSAFE`.
    public var forced: [String] = []
    public var callbacks: [Callback] = []
    /// Patched elements that implement callbacks.
    var callbackElements: [Int] = []

    public var isEmpty: Bool {
        ignoredElements.isEmpty && ignoredSections.isEmpty && forced.isEmpty && callbacks.isEmpty
    }

    public static let sectionPrefix = ".kpatch."

    /// Reads the directive sections of `index`'s object. An entry that does
    /// not point where its section says is an error naming the section and
    /// the offset.
    static func read(_ index: ObjectIndex) throws(PatchCoreError) -> PatchDirectives {
        var directives = PatchDirectives()
        let file = index.file
        for rs in file.relocationSections where rs.target > 0 && rs.target < file.sections.count {
            let name = file.sections[rs.target].name
            guard name.hasPrefix(sectionPrefix) else { continue }
            let stage =
                name.hasPrefix(".kpatch.callbacks.")
                ? Stage(rawValue: String(name.dropFirst(".kpatch.callbacks.".count))) : nil
            for r in rs.relocations.sorted(by: { $0.offset < $1.offset }) {
                let target = index.resolve(r, in: rs.target)
                func function() throws(PatchCoreError) -> Int {
                    guard case .element(let e, let addend) = target, addend == 0, index.elements[e].kind == .function
                    else {
                        throw PatchCoreError(
                            .unsupportedInput,
                            "\(file.path): the entry at offset \(r.offset) of \(name) does not point to a function of this object"
                        )
                    }
                    return e
                }
                switch name {
                case ".kpatch.ignore.functions":
                    let e = try function()
                    directives.ignoredElements.insert(e)
                    // Its compiler-split parts go with it.
                    for child in index.elements where Correlation.parentName(of: child.name) == index.elements[e].name {
                        directives.ignoredElements.insert(child.index)
                    }
                case ".kpatch.force":
                    directives.forced.append(index.elements[try function()].name)
                case ".kpatch.ignore.sections":
                    guard case .merged(let section, let offset, let addend) = target,
                        file.sections[section].has(SectionFlags.strings)
                    else {
                        throw PatchCoreError(
                            .unsupportedInput,
                            "\(file.path): the entry at offset \(r.offset) of \(name) does not point to a section name")
                    }
                    let data = file.data(file.sections[section])
                    var i = Int(Int64(offset) + addend)
                    var bytes: [UInt8] = []
                    while i >= 0 && i < data.count && data[i] != 0 {
                        bytes.append(data[i])
                        i += 1
                    }
                    directives.ignoredSections.append(String(decoding: bytes, as: UTF8.self))
                default:
                    guard let stage else {
                        throw PatchCoreError(.unsupportedInput, "\(file.path): unknown patch directive section \(name)")
                    }
                    let e = try function()
                    if directives.callbacks.contains(where: { $0.stage == stage }) {
                        throw PatchCoreError(
                            .unsupportedInput,
                            "\(file.path): two \(stage.rawValue) callbacks in one object (\(directives.callbacks.first { $0.stage == stage }!.function) and \(index.elements[e].name)); the livepatch core calls one per object"
                        )
                    }
                    directives.callbacks.append(Callback(stage: stage, function: index.elements[e].name))
                    directives.callbackElements.append(e)
                }
            }
        }
        // Callbacks in stage order, whatever the section order.
        let order = zip(directives.callbacks, directives.callbackElements).sorted {
            Stage.allCases.firstIndex(of: $0.0.stage)! < Stage.allCases.firstIndex(of: $1.0.stage)!
        }
        directives.callbacks = order.map(\.0)
        directives.callbackElements = order.map(\.1)
        for section in directives.ignoredSections {
            for e in index.elements where file.sections[e.section].name == section {
                directives.ignoredElements.insert(e.index)
            }
        }
        return directives
    }
}
