// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import SystemPackage

/// A read-only memory mapping of a whole file, or an owned byte buffer for
/// data that did not come from a file (a decompressed module, test input).
///
/// Readers see it only as `bytes`; the mapping lives as long as the object.
public final class MappedFile: @unchecked Sendable {
    // Safety: the base pointer is either a private read-only mapping of
    // `count` bytes that is unmapped in deinit, or a heap copy owned by this
    // object and freed in deinit. Neither changes after init, so sharing
    // across threads is sound.
    private let base: UnsafeRawPointer?
    public let count: Int
    private let mapped: Bool
    public let path: String

    /// Maps `path`, a regular file, read-only.
    public init(path: String) throws(PlatformError) {
        self.path = path
        // Regular files only: a FIFO or a device would hang or never end.
        let (fd, st) = try RegularFile.open(path)
        defer { close(fd) }
        let size = Int(st.st_size)
        count = size
        if size == 0 {
            base = nil
            mapped = false
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if address == MAP_FAILED || address == nil {
            throw PlatformError(.systemCall, errno: currentErrno(), "mmap \(path)")
        }
        base = UnsafeRawPointer(address)
        mapped = true
    }

    /// Wraps bytes already in memory, labelled with `path` for messages.
    public init(bytes: [UInt8], path: String) {
        self.path = path
        count = bytes.count
        mapped = false
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        base = UnsafeRawPointer(copy)
    }

    deinit {
        guard let base else { return }
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// The file's bytes. Valid while this object is alive.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }
}
