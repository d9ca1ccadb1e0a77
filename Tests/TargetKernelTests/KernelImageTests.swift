// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import Testing

@Suite struct KernelImageTests {
    /// A minimal bzImage: boot header with the payload fields, and a gzip
    /// payload followed by the 4-byte size the kernel build appends.
    func fakeBzImage(payload: [UInt8]) throws -> [UInt8] {
        let compressed = try Command.run(["gzip", "-c"], input: payload).stdout
        var image = [UInt8](repeating: 0, count: 1024 + 16)
        image[0x1f1] = 1  // setup sectors: protected-mode code starts at 2 * 512
        image.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        image[0x206] = 0x0f
        image[0x207] = 0x02
        func put(_ value: Int, at offset: Int) {
            for i in 0..<4 { image[offset + i] = UInt8((value >> (8 * i)) & 0xff) }
        }
        put(16, at: 0x248)
        put(compressed.count + 4, at: 0x24c)
        image += compressed
        image += [UInt8(payload.count & 0xff), UInt8((payload.count >> 8) & 0xff), 0, 0]
        return image
    }

    @Test func extractsTheElfPayload() throws {
        let elf: [UInt8] = [0x7f, 0x45, 0x4c, 0x46] + Array("rest of a kernel".utf8)
        let directory = try TemporaryDirectory(prefix: "bzimage")
        let path = Path.join(directory.path, "vmlinuz-test")
        try FileSystem.write(path, try fakeBzImage(payload: elf))
        #expect(try KernelImage.extractVmlinux(from: path) == elf)
    }

    @Test func refusesWhatIsNotAKernel() throws {
        let directory = try TemporaryDirectory(prefix: "bzimage")
        let notElf = Path.join(directory.path, "not-elf")
        try FileSystem.write(notElf, try fakeBzImage(payload: Array("plain text".utf8)))
        #expect(throws: KernelError.self) { try KernelImage.extractVmlinux(from: notElf) }
        let noHeader = Path.join(directory.path, "no-header")
        try FileSystem.write(noHeader, [UInt8](repeating: 0, count: 4096))
        #expect(throws: KernelError.self) { try KernelImage.extractVmlinux(from: noHeader) }
    }

    /// The installed target kernel's image yields its ELF vmlinux.
    @Test func extractsTheInstalledKernel() throws {
        let release = try KernelResolver().resolve(nil)
        let vmlinux = try KernelImage.extractVmlinux(from: release.image)
        #expect(vmlinux.starts(with: [0x7f, 0x45, 0x4c, 0x46]))
        #expect(vmlinux.count > (try FileSystem.status(release.image)).st_size)
    }
}
