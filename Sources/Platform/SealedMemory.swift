// SPDX-License-Identifier: GPL-2.0-only
import CSutureShims
import Glibc
import SystemPackage

/// Bytes in a sealed memfd: an anonymous file that nobody, not even its
/// creator, can change any more.
///
/// What Suture checks must be what the kernel gets. A module file checked
/// by path and then opened again for `finit_module` can be swapped in
/// between. So the file is read once, its bytes are written into a memfd,
/// the memfd is sealed against writes, shrinking and growing
/// (`F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL`), and both the
/// checks and `finit_module` use those bytes.
public final class SealedMemory: @unchecked Sendable {
    // Safety: the descriptor is owned by this object, closed in deinit, and
    // the sealed file behind it cannot change, so sharing is sound.
    public let fd: FileDescriptor
    public let count: Int

    static let allowSealing: UInt32 = 2  // MFD_ALLOW_SEALING
    static let closeOnExec: UInt32 = 1  // MFD_CLOEXEC
    static let addSeals: Int32 = 1033  // F_ADD_SEALS
    static let getSeals: Int32 = 1034  // F_GET_SEALS
    /// F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
    public static let allSeals: Int32 = 1 | 2 | 4 | 8

    public init(name: String, bytes: [UInt8]) throws(PlatformError) {
        let raw = try syscallResult("memfd_create \(name)") {
            suture_memfd_create(name, Self.allowSealing | Self.closeOnExec)
        }
        fd = FileDescriptor(rawValue: raw)
        count = bytes.count
        do {
            try FileSystem.writeAll(fd: raw, bytes, context: "memfd \(name)")
            _ = try syscallResult("seal memfd \(name)") { fcntl(raw, Self.addSeals, Self.allSeals) }
        } catch {
            close(raw)
            throw error
        }
    }

    /// The seals in force, from the kernel (`F_GET_SEALS`).
    public var seals: Int32 { fcntl(fd.rawValue, Self.getSeals) }

    /// Reads the sealed contents back from the start, as the kernel would.
    public func contents() throws(PlatformError) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = try retryingOnEINTR("read memfd") {
                result.withUnsafeMutableBytes {
                    pread(fd.rawValue, $0.baseAddress! + offset, count - offset, off_t(offset))
                }
            }
            if n == 0 { break }
            offset += n
        }
        return Array(result[0..<offset])
    }

    deinit { close(fd.rawValue) }
}
