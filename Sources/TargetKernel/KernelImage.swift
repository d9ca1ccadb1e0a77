// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The target kernel's boot image and the uncompressed ELF `vmlinux`
/// inside it.
///
/// A bzImage carries the compressed kernel at the setup header's
/// `payload_offset`/`payload_length` (`Documentation/x86/boot.rst`). The
/// vmlinux cut out of it serves the build (reading the running code) and
/// the guest (booting through PVH without the decompressor). Extraction
/// is cached per image, because it takes seconds.
public enum KernelImage {
    /// The uncompressed ELF kernel inside a bzImage.
    public static func extractVmlinux(from image: String) throws(KernelError) -> [UInt8] {
        let file: MappedFile
        do { file = try MappedFile(path: image) } catch {
            throw KernelError(.missingPiece, "read \(image): \(error.description)", cause: error)
        }
        let payload = try compressedPayload(file.bytes, image: image)
        guard let tool = decompressor(for: payload) else {
            throw KernelError(.missingPiece, "\(image): unknown compression of the kernel payload")
        }
        let result: CommandResult
        do {
            result = try Command.run(tool, input: payload)
        } catch {
            throw KernelError(.missingPiece, "decompress \(image): \(error.description)", cause: error)
        }
        guard result.termination.succeeded, result.stdout.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else {
            throw KernelError(
                .missingPiece, "\(image): \(tool[0]) did not produce an ELF kernel: \(Command.tail(result.stderrText))")
        }
        return result.stdout
    }

    /// The extracted vmlinux of `release`, cached in `cacheDirectory/kernels`
    /// (extracted now when missing); nil when it cannot be had.
    public static func cachedVmlinux(_ release: KernelRelease, cacheDirectory: String) -> String? {
        guard let st = try? FileSystem.status(release.image) else { return nil }
        let directory = Path.join(cacheDirectory, "kernels")
        let name = "vmlinux-\(release.release)-\(st.st_size)-\(st.st_mtim.tv_sec)"
        let cached = Path.join(directory, name)
        if FileSystem.exists(cached) { return cached }
        do {
            let vmlinux = try extractVmlinux(from: release.image)
            try FileSystem.makeDirectories(directory)
            // Older extractions of the same release are stale now.
            for old in (try? FileSystem.list(directory)) ?? [] where old.hasPrefix("vmlinux-\(release.release)-") {
                try? FileSystem.removeFile(Path.join(directory, old))
            }
            try FileSystem.writeAtomically(cached, vmlinux)
            return cached
        } catch {
            return nil
        }
    }

    /// Whether the kernel can be booted from its vmlinux (`CONFIG_PVH`).
    public static func supportsPVH(_ release: KernelRelease) -> Bool {
        guard let config = release.config, let text = FileSystem.readTextIfPresent(config) else { return false }
        return text.contains("\nCONFIG_PVH=y\n")
    }

    /// The compressed kernel, without the 4-byte uncompressed size the
    /// kernel build appends to it.
    static func compressedPayload(_ bytes: UnsafeRawBufferPointer, image: String) throws(KernelError) -> [UInt8] {
        func u32(_ offset: Int) -> Int {
            Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3])
                << 24
        }
        guard bytes.count > 0x250, bytes[0x202] == 0x48, bytes[0x203] == 0x64, bytes[0x204] == 0x72,
            bytes[0x205] == 0x53
        else {
            throw KernelError(.missingPiece, "\(image): no x86 boot header (HdrS at 0x202)")
        }
        let version = Int(bytes[0x206]) | Int(bytes[0x207]) << 8
        guard version >= 0x208 else {
            throw KernelError(
                .missingPiece, "\(image): boot protocol \(version >> 8).\(version & 0xff) has no payload fields")
        }
        let setupSectors = bytes[0x1f1] == 0 ? 4 : Int(bytes[0x1f1])
        let start = (setupSectors + 1) * 512 + u32(0x248)
        let length = u32(0x24c)
        guard length > 4, start + length <= bytes.count else {
            throw KernelError(
                .missingPiece, "\(image): payload at offset \(start), \(length) bytes, lies outside the file")
        }
        return Array(bytes[start..<(start + length - 4)])
    }

    static func decompressor(for payload: [UInt8]) -> [String]? {
        let magics: [([UInt8], [String])] = [
            ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], ["xz", "-dc"]),
            ([0x28, 0xb5, 0x2f, 0xfd], ["zstd", "-dcq"]),
            ([0x1f, 0x8b], ["gzip", "-dc"]),
            ([0x02, 0x21, 0x4c, 0x18], ["lz4", "-dc"]),
            ([0x5d, 0x00, 0x00], ["xz", "--format=lzma", "-dc"]),
            ([0x42, 0x5a, 0x68], ["bzip2", "-dc"]),
        ]
        return magics.first { payload.starts(with: $0.0) }?.1
    }
}
