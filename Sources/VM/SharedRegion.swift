// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// A memory region that host and guest both map, for bulk transfers.
///
/// The serial line moves about 40 KB/s into a TCG guest (an interrupt per
/// 8-byte FIFO trigger) and 100–150 KB/s out of it. So files travel
/// through QEMU's `ivshmem-plain` device instead: its BAR 2 is backed by
/// a memfd that the host also maps. The guest maps the BAR through sysfs
/// (`/sys/bus/pci/devices/*/resource2`), which needs no driver. Requests
/// on the serial channel say what is in the region; one transfer uses it
/// at a time.
final class SharedRegion {
    /// A power of two, as a PCI BAR must be; the memfd is sparse, so only
    /// what is transferred costs memory.
    static let defaultSize = 64 << 20
    /// The `ivshmem-plain` PCI IDs (Red Hat, Inc.).
    static let vendor = "0x1af4"
    static let device = "0x1110"

    // Safety: `base` is a MAP_SHARED mapping of `size` bytes that lives
    // until deinit; the protocol lets only one side touch it at a time.
    private let base: UnsafeMutableRawPointer
    let size: Int

    /// Maps `size` bytes of `fd` shared, read-write.
    init(fd: Int32, size: Int) throws(VMError) {
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw VMError(.system, "map the shared transfer region", errno: currentErrno())
        }
        base = address
        self.size = size
    }

    deinit { munmap(base, size) }

    /// A new memfd of `size` bytes for the host side; the caller passes it
    /// to QEMU and keeps it for `init(fd:size:)`.
    static func createBacking(size: Int = defaultSize) throws(VMError) -> Int32 {
        let fd: Int32
        do {
            fd = try Kernel.memfdCreate(name: "suture-transfer").rawValue
        } catch {
            throw VMError(.system, "create the shared transfer region", error)
        }
        guard ftruncate(fd, off_t(size)) == 0 else {
            close(fd)
            throw VMError(.system, "size the shared transfer region", errno: currentErrno())
        }
        return fd
    }

    /// The QEMU arguments that expose `/proc/self/fd/FD` to the guest.
    static func qemuArguments(fd: Int32, size: Int = defaultSize) -> [String] {
        [
            "-object", "memory-backend-file,id=transfer,mem-path=/proc/self/fd/\(fd),size=\(size),share=on",
            "-device", "ivshmem-plain,memdev=transfer",
        ]
    }

    /// In the guest: the ivshmem device's BAR 2, if there is one.
    static func guestDevice() -> SharedRegion? {
        let root = "/sys/bus/pci/devices"
        for name in (try? FileSystem.list(root)) ?? [] {
            let directory = Path.join(root, name)
            guard FileSystem.readTextIfPresent(Path.join(directory, "vendor"))?.trimmingWhitespace() == vendor,
                FileSystem.readTextIfPresent(Path.join(directory, "device"))?.trimmingWhitespace() == device
            else { continue }
            let resource = Path.join(directory, "resource2")
            guard let st = try? FileSystem.status(resource), st.st_size > 0 else { return nil }
            let fd = open(resource, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            return try? SharedRegion(fd: fd, size: Int(st.st_size))
        }
        return nil
    }

    func write(_ bytes: [UInt8]) {
        precondition(bytes.count <= size, "caller checks the size")
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    func read(_ length: Int) -> [UInt8] {
        precondition(length <= size, "caller checks the size")
        return [UInt8](UnsafeRawBufferPointer(start: base, count: length))
    }
}
