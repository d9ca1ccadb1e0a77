// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel

/// Ksplice's run-pre check for kernel patches: the original object's code
/// of every function the patch replaces, and of every function its klp
/// relocations point into, must be the target's shipped code (vmlinux cut
/// out of the bzImage; the module's `.ko`), outside relocation fields and
/// the sites the kernel rewrites itself (`RewrittenSites`). A mismatch
/// means the source, configuration or compiler is not the kernel's.
public enum RunPre {
    /// Why a function is checked.
    public enum Role: String, Sendable {
        /// The patch replaces it.
        case replaced
        /// A klp relocation of the patch points into it.
        case referenced
    }

    /// One function, checked.
    public struct Verification: Sendable {
        public let target: KlpObject
        public let function: String
        public let sympos: Int
        /// The kbuild object whose original code was compared.
        public let object: String
        public let role: Role
        /// The shipped bytes: what the code must be at load time, outside
        /// `mask`.
        public let expected: [UInt8]
        /// True where a byte is a relocation field or a rewritten site.
        public let mask: [Bool]
        /// The rewritten sites, at offsets in the function.
        public let sites: [RewrittenSite]
        /// Bytes in relocation fields.
        public let relocationBytes: Int
        /// What the code was compared with.
        public let against: String
        /// Where it lies (`ShippedCode.Code.place`), for the load-time check.
        public let place: String

        public var json: JSON {
            .object([
                ("target", .string(target.name)), ("function", .string(function)), ("sympos", .integer(sympos)),
                ("object", .string(object)), ("role", .string(role.rawValue)), ("status", .string("verified")),
                ("bytes", .integer(expected.count)), ("relocationBytes", .integer(relocationBytes)),
                (
                    "maskedSites",
                    .object(
                        RewrittenSite.Kind.allCases.compactMap { k in masked[k].map { (k.rawValue, .integer($0)) } })
                ),
                ("against", .string(against)),
            ])
        }

        /// How many sites of each class were masked.
        public var masked: [RewrittenSite.Kind: Int] {
            var counts: [RewrittenSite.Kind: Int] = [:]
            for s in sites { counts[s.kind, default: 0] += 1 }
            return counts
        }
    }

    /// One function whose code differs.
    public struct Mismatch: Sendable {
        public let target: KlpObject
        public let function: String
        public let object: String
        public let offset: Int
        public let original: [UInt8]
        public let shipped: [UInt8]
        public let mask: [Bool]
        public let against: String

        public var description: String {
            "\(function) (\(object), \(target.name)) differs from \(against) at offset 0x\(String(offset, radix: 16)):\n"
                + "    original: \(RunPre.run(original, mask, at: offset))\n"
                + "    shipped:  \(RunPre.run(shipped, mask, at: offset))"
        }
    }

    /// Up to 16 bytes from a little before `offset`, masked bytes as `..`,
    /// the first differing byte in brackets.
    static func run(_ bytes: [UInt8], _ mask: [Bool], at offset: Int) -> String {
        let start = max(0, offset - 4)
        let end = min(bytes.count, start + 16)
        guard start < end else { return "(no bytes: the function ends before 0x\(String(offset, radix: 16)))" }
        return (start..<end).map { i -> String in
            let hex = i < mask.count && mask[i] ? ".." : (bytes[i] < 16 ? "0" : "") + String(bytes[i], radix: 16)
            return i == offset ? "[\(hex)]" : hex
        }.joined(separator: " ")
    }

    /// The first offset outside `mask` where the two differ; the shorter
    /// length when one is cut short; nil when equal.
    public static func firstDifference(_ a: [UInt8], _ b: [UInt8], mask: [Bool]) -> Int? {
        let n = min(a.count, b.count)
        for i in 0..<n where a[i] != b[i] && !(i < mask.count && mask[i]) { return i }
        return a.count == b.count ? nil : n
    }

    /// The mask of `element` in `original`: its relocation fields and the
    /// sites the kernel rewrites, with counts of each class.
    static func mask(of element: Element, in original: ObjectIndex, sites: RewrittenSites)
        -> (mask: [Bool], sites: [RewrittenSite], relocationBytes: Int)
    {
        let size = Int(element.size)
        var mask = [Bool](repeating: false, count: size)
        var relocationBytes = 0
        let arch = original.rules.architecture
        for r in original.relocations(in: element.section, from: element.start, to: element.end) where r.explicit {
            let width = arch.kind(r.type)?.size ?? 0
            let at = Int(r.offset - element.start)
            for i in at..<min(size, at + width) where !mask[i] {
                mask[i] = true
                relocationBytes += 1
            }
        }
        var local: [RewrittenSite] = []
        for site in sites.sites(in: element.section, from: element.start, to: element.end) {
            let at = Int(site.offset - element.start)
            for i in at..<min(size, at + site.length) { mask[i] = true }
            local.append(RewrittenSite(kind: site.kind, offset: UInt64(at), length: site.length))
        }
        return (mask, local, relocationBytes)
    }
}
