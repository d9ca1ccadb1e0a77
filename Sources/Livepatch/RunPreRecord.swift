// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// The expected code a patch module built by `suture build` carries in its
/// `.suture.runpre` section: per function it replaces or refers into, the
/// target's shipped bytes, with relocation fields and the sites the kernel
/// rewrites itself masked, and those sites. `suture load` compares them
/// with the running kernel. The writer is `KernelPatch.RunPre.record`.
public struct RunPreRecord: Sendable, Equatable {
    public static let sectionName = ".suture.runpre"

    public struct Site: Sendable, Equatable {
        /// `ftrace`, `jumpLabel`, `alternative`, … (`RewrittenSite.Kind`).
        public let kind: String
        public let offset: Int
        public let length: Int
        /// The site's bytes in the shipped code; nil when not recorded.
        public var shipped: [UInt8]?
    }

    public struct Function: Sendable, Equatable {
        /// `vmlinux` or a module name.
        public let target: String
        public let name: String
        public let sympos: Int
        /// `replaced` or `referenced`.
        public let role: String
        public let expected: [UInt8]
        /// True where a byte is not compared.
        public let mask: [Bool]
        /// `0xADDRESS` in the image, or `SECTION+OFFSET` in the module.
        public var place: String?
        public var sites: [Site] = []
    }

    /// The address of the image's `.text`, to find the KASLR slide.
    public var imageText: UInt64?
    public var functions: [Function]

    /// The record of a module image; nil when it has none (built with
    /// `--no-verify`, or by another tool).
    public static func read(_ elf: ELFFile) throws(LivepatchError) -> RunPreRecord? {
        guard let section = elf.section(named: sectionName) else { return nil }
        let text = String(decoding: elf.data(section).array, as: UTF8.self)
        return try parse(text, file: elf.path)
    }

    public static func parse(_ text: String, file: String) throws(LivepatchError) -> RunPreRecord {
        func bad(_ line: Int, _ why: String) -> LivepatchError {
            LivepatchError(.notModule, "\(file): \(sectionName) line \(line): \(why)")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == "suture-runpre 1" else { throw bad(1, "not a version 1 record") }
        var record = RunPreRecord(imageText: nil, functions: [])
        var functions: [Function] = []
        for (n, line) in lines.enumerated().dropFirst() {
            let fields = line.split(separator: " ").map(String.init)
            switch fields.first {
            case "image-text":
                guard fields.count == 2, fields[1].hasPrefix("0x"),
                    let value = UInt64(fields[1].dropFirst(2), radix: 16)
                else { throw bad(n + 1, "image-text needs 0xADDRESS") }
                record.imageText = value
            case "function":
                guard fields.count == 6 || fields.count == 7, let sympos = Int(fields[3]),
                    fields[5].utf8.count % 2 == 0
                else {
                    throw bad(n + 1, "a function needs TARGET NAME SYMPOS ROLE HEX [PLACE]")
                }
                var expected: [UInt8] = []
                var mask: [Bool] = []
                let hex = Array(fields[5].utf8)
                var i = 0
                while i < hex.count {
                    if hex[i] == UInt8(ascii: "."), hex[i + 1] == UInt8(ascii: ".") {
                        expected.append(0)
                        mask.append(true)
                    } else {
                        guard let hi = digit(hex[i]), let lo = digit(hex[i + 1]) else {
                            throw bad(n + 1, "bad hex at \(i)")
                        }
                        expected.append(hi << 4 | lo)
                        mask.append(false)
                    }
                    i += 2
                }
                functions.append(
                    Function(
                        target: fields[1], name: fields[2], sympos: sympos, role: fields[4], expected: expected,
                        mask: mask, place: fields.count == 7 ? fields[6] : nil))
            case "site":
                guard fields.count == 4 || fields.count == 5, let offset = Int(fields[2]), let length = Int(fields[3]),
                    !functions.isEmpty, offset >= 0, length > 0,
                    offset + length <= functions[functions.count - 1].expected.count
                else { throw bad(n + 1, "a site needs KIND OFFSET LENGTH [SHIPPED] inside the function before it") }
                var shipped: [UInt8]?
                if fields.count == 5 {
                    let hex = Array(fields[4].utf8)
                    guard hex.count == 2 * length else {
                        throw bad(n + 1, "the shipped bytes of a site need its length")
                    }
                    var bytes: [UInt8] = []
                    for i in stride(from: 0, to: hex.count, by: 2) {
                        guard let hi = digit(hex[i]), let lo = digit(hex[i + 1]) else {
                            throw bad(n + 1, "bad hex in the shipped bytes")
                        }
                        bytes.append(hi << 4 | lo)
                    }
                    shipped = bytes
                }
                functions[functions.count - 1].sites.append(
                    Site(kind: fields[1], offset: offset, length: length, shipped: shipped))
            default:
                throw bad(n + 1, "unknown item \(fields.first ?? "")")
            }
        }
        record.functions = functions
        return record
    }

    private static func digit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
