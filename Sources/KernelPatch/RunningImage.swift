// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform
import TargetKernel

/// The target's own kernel image (the vmlinux inside its bzImage), used to
/// tell apart local symbols that share a name, the way Ksplice matched its
/// "pre" code against the running kernel: the original object's code is
/// byte-identical to the image's, so a reference to the wanted symbol at a
/// known place in a known function reads, in the image, as that symbol's
/// address.
public struct RunningImage: Sendable {
    public let file: ELFFile
    /// kallsyms address minus image address (the KASLR offset, 0 without).
    public let slide: Int64

    /// The image of `kernel`, from the cache of extracted kernels (shared
    /// with the guest's PVH boot) or extracted now; nil when it cannot be had.
    public static func load(_ kernel: KernelRelease, cacheRoot: String?, table: KallsymsTable) -> RunningImage? {
        let file: ELFFile?
        if KernelImage.supportsPVH(kernel),
            let cached = KernelImage.cachedVmlinux(
                kernel, cacheDirectory: CacheLocation.vm(CacheLocation.root(cacheRoot)))
        {
            file = try? ELFFile.open(cached)
        } else if let bytes = try? KernelImage.extractVmlinux(from: kernel.image) {
            file = try? ELFFile.parse(bytes, path: "vmlinux of \(kernel.release)")
        } else {
            file = nil
        }
        guard let file, let text = file.section(named: ".text"),
            let anchor = table.occurrences(of: "_text").first.map({ table.entries[$0] })
        else { return nil }
        return RunningImage(file: file, slide: Int64(bitPattern: anchor.address &- text.address))
    }

    /// `count` bytes at a kallsyms address, through the image's segments.
    func read(_ address: UInt64, _ count: Int) -> [UInt8]? {
        let imageAddress = UInt64(bitPattern: Int64(bitPattern: address) &- slide)
        for ph in file.programHeaders where ph.type == SegmentType.load {
            guard imageAddress >= ph.virtualAddress, imageAddress + UInt64(count) <= ph.virtualAddress + ph.fileSize
            else { continue }
            let offset = Int(ph.offset + (imageAddress - ph.virtualAddress))
            let bytes = file.storage.bytes
            guard offset + count <= bytes.count else { return nil }
            return Array(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
        }
        return nil
    }

    /// The kallsyms entry of `element`, found through a reference to it from
    /// another element of the original object whose address kallsyms gives
    /// unambiguously. Nil when no such witness exists.
    func locate(_ element: Element, in original: ObjectIndex, table: KallsymsTable) -> Int? {
        let arch = original.rules.architecture
        let candidates = Set(table.occurrences(of: element.name))
        guard !candidates.isEmpty else { return nil }
        for witness in original.elements where witness.index != element.index {
            let places = table.occurrences(of: witness.name)
            guard places.count == 1 else { continue }
            let base = table.entries[places[0]].address
            for r in original.relocations(in: witness.section, from: witness.start, to: witness.end) where r.explicit {
                guard case .element(let target, let addend) = r.target, target == element.index,
                    let kind = arch.kind(r.type), kind.size == 4 || kind.size == 8
                else { continue }
                let place = base &+ (r.offset - witness.start)
                guard let field = read(place, kind.size) else { continue }
                var value: UInt64 = 0
                for (i, b) in field.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
                let address: UInt64
                if kind.size == 4 {
                    let signed = Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: value)))
                    address =
                        kind.pcRelative
                        ? UInt64(bitPattern: signed &+ Int64(bitPattern: place) &- addend)
                        : UInt64(bitPattern: signed &- addend)
                } else {
                    address =
                        kind.pcRelative
                        ? UInt64(bitPattern: Int64(bitPattern: value) &+ Int64(bitPattern: place) &- addend)
                        : UInt64(bitPattern: Int64(bitPattern: value) &- addend)
                }
                if let hit = candidates.first(where: { table.entries[$0].address == address }) { return hit }
            }
        }
        return nil
    }
}
