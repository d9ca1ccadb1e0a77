// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Reads and writes another process's memory through `/proc/PID/mem`.
///
/// Writes go through the kernel's forced access (`FOLL_FORCE`), so they
/// reach read-only text; `process_vm_writev` cannot. A write within one page
/// is all-or-nothing even if Suture is killed during it: the kernel copies a
/// page at a time and only checks for a fatal signal between pages.
public final class ProcessMemory {
    public let pid: Int32
    private let fd: Int32

    public init(pid: Int32, writable: Bool) throws(ProcessError) {
        self.pid = pid
        let path = "/proc/\(pid)/mem"
        let fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        if fd < 0 {
            let err = currentErrno()
            throw ProcessError(
                err == .permissionDenied || err == .notPermitted ? .permission : .noSuchProcess,
                "process \(pid): cannot open \(path): \(err.shortDescription)")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Reads `count` bytes at `address`; fails if any of them is unreadable.
    public func read(_ address: UInt64, count: Int) throws(ProcessError) -> [UInt8] {
        guard count > 0 else { return [] }
        let bytes: [UInt8]
        do {
            bytes = try Kernel.readAt(fd, address, count: count, context: "read \(count) bytes at 0x\(hex(address))")
        } catch {
            throw error.process(.trace, "process \(pid)")
        }
        if bytes.count != count {
            throw ProcessError(
                .trace, "process \(pid): only \(bytes.count) of \(count) bytes at 0x\(hex(address)) are readable")
        }
        return bytes
    }

    /// Reads as many of `count` bytes at `address` as are readable.
    public func readPrefix(_ address: UInt64, count: Int) -> [UInt8] {
        (try? Kernel.readAt(fd, address, count: count, context: "")) ?? []
    }

    /// Reads a little-endian word.
    public func readWord(_ address: UInt64) throws(ProcessError) -> UInt64 {
        let b = try read(address, count: 8)
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    /// Writes `bytes` at `address` in one `pwrite`.
    public func write(_ address: UInt64, _ bytes: [UInt8]) throws(ProcessError) {
        guard !bytes.isEmpty else { return }
        do {
            try Kernel.writeAt(fd, address, bytes, context: "write \(bytes.count) bytes at 0x\(hex(address))")
        } catch {
            throw error.process(.trace, "process \(pid)")
        }
    }
}

/// Lower-case hexadecimal without prefix.
@inline(__always)
func hex(_ value: UInt64) -> String { String(value, radix: 16) }

/// Parses lower- or upper-case hexadecimal bytes.
func bytes(fromHex text: String) -> [UInt8]? {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(chars.count / 2)
    var i = 0
    while i < chars.count {
        guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: self[offset + i]) << (8 * i) }
        return v
    }

    mutating func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}

/// `strerror` text for an errno value returned by an injected system call.
func errnoText(_ code: Int64) -> String {
    guard let text = strerror(Int32(truncatingIfNeeded: code)) else { return "error \(code)" }
    return string(fromCString: text)
}
