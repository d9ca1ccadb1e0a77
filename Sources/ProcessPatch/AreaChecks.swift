// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Checks on a patch area read from a target process.
///
/// The area lives in the target's memory, and the target may be hostile:
/// it can write any header and description it likes into a mapping named
/// `suture:…`. `status` and `revert` run as root and must neither trap nor
/// read unbounded amounts nor act on addresses outside the process's real
/// mappings. So every number read is checked here, with checked arithmetic,
/// before any of it is used.
enum AreaChecks {
    /// The most description text read from an area: real ones are a few KiB.
    static let descriptionLimit = 4 << 20
    /// Sequences are stored as u32 in the header.
    static let sequenceLimit = Int(UInt32.max) - 1

    /// `a + b`, or nil on overflow.
    static func sum(_ a: UInt64, _ b: UInt64) -> UInt64? {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? nil : s
    }

    /// Throws unless the area's ranges, functions and tables all lie where
    /// a real area would put them.
    static func validate(_ area: PatchArea, map: MemoryMap) throws(ProcessError) {
        func corrupt(_ what: String) -> ProcessError {
            ProcessError(.state, "the patch area at 0x\(hex(area.start)) is corrupt: \(what)")
        }
        guard let end = sum(area.start, area.size) else { throw corrupt("its size overflows") }
        let inside = area.start..<end
        func within(_ r: Range<UInt64>) -> Bool {
            r.lowerBound >= inside.lowerBound && r.upperBound <= inside.upperBound
        }
        guard (0...sequenceLimit).contains(area.sequence) else {
            throw corrupt("sequence \(area.sequence) is out of range")
        }
        guard within(area.text), within(area.data) else { throw corrupt("its text or data range lies outside it") }
        for f in area.functions {
            let name = Printable.escaped(String(f.name.prefix(200)))
            guard let entryEnd = sum(f.address, UInt64(X86Code.entryJumpLength)), sum(f.address, f.size) != nil,
                map.mappings.contains(where: { $0.executable && $0.contains(f.address) && entryEnd <= $0.end })
            else {
                throw corrupt("function \(name) is at 0x\(hex(f.address)), not in executable memory of the process")
            }
            guard let newEnd = sum(f.newAddress, f.newSize), f.newAddress >= area.text.lowerBound,
                newEnd <= area.text.upperBound,
                let dispatcherEnd = sum(f.dispatcher, f.dispatcherSize),
                f.dispatcher >= area.text.lowerBound, dispatcherEnd <= area.text.upperBound
            else {
                throw corrupt("the new code or dispatcher of \(name) lies outside the area's text")
            }
        }
        for (frame, object) in area.unwind
        where !inside.contains(frame) || object < area.start
            || (sum(object, Linker.unwindObjectSize).map { $0 > end } ?? true)
        {
            throw corrupt("an unwind registration lies outside it")
        }
        guard let tableEnd = sum(area.tableOffset, UInt64(area.tableEntries)), tableEnd <= area.size,
            let holdersEnd = sum(area.holdersOffset, Linker.page), holdersEnd <= area.size
        else {
            throw corrupt("its thread table lies outside it")
        }
    }
}
