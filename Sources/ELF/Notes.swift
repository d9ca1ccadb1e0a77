// SPDX-License-Identifier: GPL-2.0-only
import Platform

extension ELFFile {
    /// The notes of every `SHT_NOTE` section, or of `PT_NOTE` segments
    /// when the file has no section headers.
    public func notes() throws(ELFError) -> [Note] {
        var result: [Note] = []
        let noteSections = sections.dropFirst().filter { $0.type == SectionType.note }
        if !noteSections.isEmpty {
            for section in noteSections {
                result += try parseNotes(data(section), at: section.offset, what: section.name)
            }
        } else {
            for ph in programHeaders where ph.type == SegmentType.note && ph.fileSize > 0 {
                let bytes = ELFBytes(storage: storage, start: Int(ph.offset), count: Int(ph.fileSize))
                result += try parseNotes(bytes, at: ph.offset, what: "PT_NOTE segment")
            }
        }
        return result
    }

    /// The GNU build-id, if the file has one.
    public func buildID() throws(ELFError) -> [UInt8]? {
        try notes().first { $0.name == "GNU" && $0.type == NoteType.gnuBuildID }?.descriptor
    }

    private func parseNotes(_ bytes: ELFBytes, at fileOffset: UInt64, what: String) throws(ELFError) -> [Note] {
        var notes: [Note] = []
        var offset = 0
        let all = bytes.array
        func align4(_ v: Int) -> Int { (v + 3) & ~3 }
        while offset + 12 <= all.count {
            let nameSize = Int(bytes.u32(at: offset))
            let descSize = Int(bytes.u32(at: offset + 4))
            let type = bytes.u32(at: offset + 8)
            let nameStart = offset + 12
            guard nameSize <= all.count, descSize <= all.count,
                align4(nameStart + nameSize) + descSize <= all.count
            else {
                throw ELFError(
                    .malformed, path: path, offset: fileOffset + UInt64(offset),
                    "note in \(what) (name size \(nameSize), descriptor size \(descSize)) extends past its end")
            }
            var nameBytes = all[nameStart..<nameStart + nameSize]
            if nameBytes.last == 0 { nameBytes = nameBytes.dropLast() }
            let descStart = align4(nameStart + nameSize)
            notes.append(
                Note(
                    name: String(decoding: nameBytes, as: UTF8.self), type: type,
                    descriptor: Array(all[descStart..<descStart + descSize])))
            offset = align4(descStart + descSize)
        }
        return notes
    }

    /// The `key=value` strings of `.modinfo`, in order. Keys may repeat
    /// (`alias`, `depends`).
    public func modinfo() -> [(key: String, value: String)] {
        guard let section = section(named: ".modinfo") else { return [] }
        var result: [(String, String)] = []
        data(section).withUnsafeBytes { raw in
            for entry in raw.split(separator: 0) where !entry.isEmpty {
                let text = String(decoding: entry, as: UTF8.self)
                if let eq = text.firstIndex(of: "=") {
                    result.append((String(text[..<eq]), String(text[text.index(after: eq)...])))
                }
            }
        }
        return result
    }

    /// The first `.modinfo` value of `key`.
    public func modinfoValue(_ key: String) -> String? {
        modinfo().first { $0.key == key }?.value
    }
}
