// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The one bounds-checked way to read bytes of an ELF file.
///
/// Every load checks its range against the buffer and throws an `ELFError`
/// that names the file and the offset, so no input can make the reader trap.
struct ByteReader {
    // Safety: `bytes` points into a `MappedFile` that the owning `ELFFile`
    // keeps alive for as long as any reader of it exists.
    let bytes: UnsafeRawBufferPointer
    let path: String

    var count: Int { bytes.count }

    func fail(_ offset: Int, _ message: String) -> ELFError {
        ELFError(.truncated, path: path, offset: UInt64(max(offset, 0)), message)
    }

    @inline(__always)
    func check(_ offset: Int, _ size: Int, _ what: @autoclosure () -> String) throws(ELFError) {
        if offset < 0 || size < 0 || offset > bytes.count - size {
            throw fail(offset, "\(what()) (\(size) bytes) extends past the end of the file (\(bytes.count) bytes)")
        }
    }

    @inline(__always)
    func u8(_ offset: Int, _ what: @autoclosure () -> String) throws(ELFError) -> UInt8 {
        try check(offset, 1, what())
        return bytes[offset]
    }

    @inline(__always)
    func u16(_ offset: Int, _ what: @autoclosure () -> String) throws(ELFError) -> UInt16 {
        try check(offset, 2, what())
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    func u32(_ offset: Int, _ what: @autoclosure () -> String) throws(ELFError) -> UInt32 {
        try check(offset, 4, what())
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    func u64(_ offset: Int, _ what: @autoclosure () -> String) throws(ELFError) -> UInt64 {
        try check(offset, 8, what())
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Loads without a check; only for offsets inside a range that was
    /// checked with `check` or `range` just before.
    @inline(__always)
    func uncheckedU16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    func uncheckedU32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    func uncheckedU64(_ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Validates a 64-bit (offset, size) pair from the file and converts it
    /// to a range, without overflowing.
    func range(offset: UInt64, size: UInt64, at headerOffset: Int, _ what: @autoclosure () -> String) throws(ELFError)
        -> Range<Int>
    {
        let total = UInt64(bytes.count)
        if offset > total || size > total - offset {
            throw ELFError(
                .truncated, path: path, offset: UInt64(headerOffset),
                "\(what()) at file offset 0x\(String(offset, radix: 16)) with size \(size) extends past the end of the file (\(bytes.count) bytes)"
            )
        }
        return Int(offset)..<Int(offset + size)
    }

    /// The NUL-terminated string at `index` inside the string table `table`.
    func string(
        in table: Range<Int>, at index: UInt32, tableName: @autoclosure () -> String, user: @autoclosure () -> String
    ) throws(ELFError) -> String {
        let start = table.lowerBound + Int(index)
        guard Int(index) < table.count else {
            throw ELFError(
                .malformed, path: path, offset: UInt64(table.lowerBound),
                "\(user()): name offset \(index) is outside \(tableName()) (\(table.count) bytes)")
        }
        let base = bytes.baseAddress! + start
        let limit = table.upperBound - start
        guard let end = memchr(base, 0, limit) else {
            throw ELFError(
                .malformed, path: path, offset: UInt64(start),
                "\(user()): name at offset \(index) in \(tableName()) is not NUL-terminated")
        }
        let length = UnsafeRawPointer(end) - base
        return String(decoding: UnsafeRawBufferPointer(start: base, count: length), as: UTF8.self)
    }
}
