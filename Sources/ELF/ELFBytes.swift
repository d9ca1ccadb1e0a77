// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Immutable bytes of a section: a window into a mapped file, or bytes made
/// in memory. Cheap to copy; the storage lives as long as any copy.
public struct ELFBytes: Sendable, Equatable {
    let storage: MappedFile?
    let start: Int
    public let count: Int

    /// A window into `storage`.
    init(storage: MappedFile, start: Int, count: Int) {
        self.storage = storage
        self.start = start
        self.count = count
    }

    /// Bytes made in memory.
    public init(_ bytes: [UInt8]) {
        storage = bytes.isEmpty ? nil : MappedFile(bytes: bytes, path: "<memory>")
        start = 0
        count = bytes.count
    }

    public static let empty = ELFBytes([])

    public var isEmpty: Bool { count == 0 }

    /// Calls `body` with the bytes. The pointer is valid only inside `body`.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        guard let storage, count > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let all = storage.bytes
        return try body(UnsafeRawBufferPointer(rebasing: all[start..<start + count]))
    }

    /// A copy as an array.
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < count, "ELFBytes index out of range")
        return withUnsafeBytes { $0[index] }
    }

    /// A sub-range; `range` must lie within the bytes.
    public func slice(_ range: Range<Int>) -> ELFBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "ELFBytes slice out of range")
        guard let storage else { return .empty }
        return ELFBytes(storage: storage, start: start + range.lowerBound, count: range.count)
    }

    public static func == (a: ELFBytes, b: ELFBytes) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
    }

    /// Little-endian loads for callers that already checked the range.
    public func u32(at offset: Int) -> UInt32 {
        withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    }

    public func u64(at offset: Int) -> UInt64 {
        withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    }
}
