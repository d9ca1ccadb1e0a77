// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

extension RunPre {
    /// The section of the patch module that carries the expected code, so
    /// that `suture load` repeats the check against the running kernel
    /// without the source. Not allocated: the kernel never loads it.
    public static let sectionName = ".suture.runpre"

    /// The record, one line per item:
    /// `suture-runpre 1`, `image-text 0xADDRESS` (the image's `.text`, to
    /// find the KASLR slide from `_text` alone), then per function
    /// `function TARGET NAME SYMPOS ROLE HEX PLACE` where PLACE is
    /// `0xADDRESS` in the image or `SECTION+OFFSET` in the module (found
    /// through `/sys/module/MODULE/sections`), and HEX is the expected
    /// code, two hex digits a byte and `..` for a masked byte, followed by
    /// `site KIND OFFSET LENGTH SHIPPED` for each rewritten site in it,
    /// SHIPPED being the site's bytes in the shipped code (what the kernel
    /// starts from, so a different running instruction is a run-time
    /// change such as a toggled static key). The reader
    /// is `Livepatch.RunPreRecord`.
    static func record(_ checks: [Verification], imageText: UInt64?) -> String {
        var text = "suture-runpre 1\n"
        if let imageText { text += "image-text 0x\(String(imageText, radix: 16))\n" }
        let digits = Array("0123456789abcdef")
        for v in checks {
            var hex = ""
            hex.reserveCapacity(v.expected.count * 2)
            for (i, b) in v.expected.enumerated() {
                if i < v.mask.count && v.mask[i] {
                    hex += ".."
                } else {
                    hex.append(digits[Int(b >> 4)])
                    hex.append(digits[Int(b & 15)])
                }
            }
            text += "function \(v.target.name) \(v.function) \(v.sympos) \(v.role.rawValue) \(hex) \(v.place)\n"
            for s in v.sites {
                var shipped = ""
                for i in Int(s.offset)..<min(v.expected.count, Int(s.offset) + s.length) {
                    shipped.append(digits[Int(v.expected[i] >> 4)])
                    shipped.append(digits[Int(v.expected[i] & 15)])
                }
                text += "site \(s.kind.rawValue) \(s.offset) \(s.length) \(shipped)\n"
            }
        }
        return text
    }

    /// Adds the record to the linked module at `path`.
    static func attach(_ checks: [Verification], imageText: UInt64?, to path: String) throws(BuildError) {
        do {
            var object = try RelocatableObject(try ELFFile.open(path))
            _ = object.add(.progbits(sectionName, flags: 0, Array(record(checks, imageText: imageText).utf8)))
            try ELFWriter.write(object, to: path)
        } catch {
            throw BuildError(.linkFailed, "adding \(sectionName) to \(path): \(error.description)", cause: error)
        }
    }
}
