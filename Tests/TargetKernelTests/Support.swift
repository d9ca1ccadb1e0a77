// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TargetKernel
import TestSupport
import Testing

/// The default target kernel's prepared tree, shared by every test that
/// needs it: prepared at most once per run, in the cache the later issues'
/// tests use too (`SUTURE_CACHE`, else /var/cache/suture).
enum SharedTree {
    static let cache = TreeCache()
    static let target: Result<KernelRelease, KernelError> = Result { () throws(KernelError) in
        try KernelResolver().defaultTarget()
    }
    static let outcome: Result<TreeCache.Outcome, KernelError> = Result { () throws(KernelError) in
        try cache.prepare(try target.get())
    }

    static func kernel() throws -> KernelRelease { try target.get() }
    static func tree() throws -> PreparedTree { try outcome.get().tree }
}

/// Stand-in kernel trees: a top Makefile with a version and the rules of
/// `Fixtures/stand-in-kbuild.mk`, so prepare's steps run in a second.
enum StandIn {
    static var fixtures: String { Path.join(Path.directory(of: #filePath), "Fixtures") }

    /// A folder `DIR/linux-VERSION` holding a stand-in tree.
    static func folder(version: String, in dir: String) throws -> String {
        let parts = version.split(separator: ".")
        try #require(parts.count == 3, "expected X.Y.Z, got \(version)")
        let top = Path.join(dir, "linux-\(version)")
        try FileSystem.makeDirectories(Path.join(top, "kernel"))
        let rules = try FileSystem.readText(Path.join(fixtures, "stand-in-kbuild.mk"))
        try FileSystem.write(
            Path.join(top, "Makefile"),
            "VERSION = \(parts[0])\nPATCHLEVEL = \(parts[1])\nSUBLEVEL = \(parts[2])\nEXTRAVERSION =\n\n" + rules)
        try FileSystem.write(Path.join(top, "README"), "A stand-in kernel tree for Suture's tests.\n")
        try FileSystem.write(Path.join(top, "kernel/stand_in.c"), "int stand_in;\n")
        return top
    }

    /// `DIR/linux-VERSION.tar.gz` of a stand-in tree.
    static func tarball(version: String, in dir: String) throws -> String {
        let work = Path.join(dir, "tarball-\(version)")
        try FileSystem.makeDirectories(work)
        _ = try folder(version: version, in: work)
        let tarball = Path.join(dir, "linux-\(version).tar.gz")
        _ = try Command.output(["tar", "-czf", tarball, "-C", work, "linux-\(version)"])
        try FileSystem.removeTree(work)
        return tarball
    }

    /// The same version with the last number one higher: 6.1.192 → 6.1.193.
    static func otherVersion(_ version: String) -> String {
        var parts = version.split(separator: ".").map(String.init)
        parts[parts.count - 1] = String((Int(parts[parts.count - 1]) ?? 0) + 1)
        return parts.joined(separator: ".")
    }
}

/// Names in `dir`, or none when it does not exist.
func entries(_ dir: String) -> [String] { (try? FileSystem.list(dir)) ?? [] }

// MARK: - Code in a kernel image

/// A function's code from an object, with the bytes that relocations will
/// fill in marked as unknown.
struct MaskedCode {
    let bytes: [UInt8]
    /// True where the byte must match; false inside a relocation field.
    let known: [Bool]

    init(object: String, section name: String) throws {
        let elf = try ELFFile.open(object)
        let section = try #require(elf.section(named: name), "\(object) has no section \(name)")
        bytes = elf.data(section).array
        var known = [Bool](repeating: true, count: bytes.count)
        if let relocations = elf.relocations(for: section.index) {
            for relocation in relocations.relocations {
                let size = elf.architecture.kind(relocation.type)?.size ?? 4
                let start = Int(relocation.offset)
                for i in start..<min(start + max(size, 1), known.count) { known[i] = false }
            }
        }
        self.known = known
    }

    /// Offsets in `haystack` where the code matches outside relocation fields.
    func matches(in haystack: [UInt8]) -> [Int] {
        // Anchor on the longest run of known bytes.
        var best = (start: 0, length: 0)
        var run = 0
        for i in 0..<known.count {
            run = known[i] ? run + 1 : 0
            if run > best.length { best = (i - run + 1, run) }
        }
        guard best.length >= 8, haystack.count >= bytes.count else { return [] }
        let anchor = Array(bytes[best.start..<best.start + best.length])
        var found: [Int] = []
        haystack.withUnsafeBufferPointer { hay in
            anchor.withUnsafeBufferPointer { a in
                let first = a[0]
                var i = best.start
                let last = hay.count - (bytes.count - best.start)
                while i <= last {
                    if hay[i] == first {
                        var same = true
                        for j in 1..<a.count where hay[i + j] != a[j] {
                            same = false
                            break
                        }
                        if same {
                            let origin = i - best.start
                            var all = true
                            for k in 0..<bytes.count where known[k] && hay[origin + k] != bytes[k] {
                                all = false
                                break
                            }
                            if all { found.append(origin) }
                        }
                    }
                    i += 1
                }
            }
        }
        return found
    }
}
