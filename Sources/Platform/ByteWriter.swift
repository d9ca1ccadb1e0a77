// SPDX-License-Identifier: GPL-2.0-only
import Glibc

/// An append-only byte buffer with fast number formatting, optionally
/// flushed to a descriptor as it fills. The hot output paths
/// (`suture elf --json`) write through it instead of building Strings.
public struct ByteWriter: ~Copyable {
    // Safety: `buffer` is owned by this non-copyable value, holds `capacity`
    // bytes, of which `count` are initialised; it is freed in deinit.
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    public private(set) var count = 0
    private let fd: Int32
    private let flushThreshold: Int

    /// A writer that flushes to `fd` whenever `flushThreshold` bytes are
    /// buffered; with fd -1 it only accumulates.
    public init(fd: Int32 = -1, flushThreshold: Int = 1 << 18) {
        self.fd = fd
        self.flushThreshold = flushThreshold
        capacity = fd >= 0 ? flushThreshold * 2 : 4096
        buffer = .allocate(capacity: capacity)
    }

    deinit { buffer.deallocate() }

    @inline(__always)
    private mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    private mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBuffer.update(from: buffer, count: count)
        buffer.deallocate()
        buffer = newBuffer
        capacity = newCapacity
    }

    @inline(__always)
    public mutating func byte(_ b: UInt8) {
        reserve(1)
        buffer[count] = b
        count += 1
    }

    @inline(__always)
    public mutating func write(_ raw: UnsafeRawBufferPointer) {
        reserve(raw.count)
        if let base = raw.baseAddress, raw.count > 0 {
            (buffer + count).update(from: base.assumingMemoryBound(to: UInt8.self), count: raw.count)
        }
        count += raw.count
        flushIfNeeded()
    }

    @inline(__always)
    public mutating func write(_ s: StaticString) {
        s.withUTF8Buffer { write(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    public mutating func write(_ s: String) {
        var s = s
        s.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    public mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Decimal digits of an unsigned integer.
    @inline(__always)
    public mutating func decimal(_ value: UInt64) {
        reserve(20)
        if value < 10 {
            buffer[count] = UInt8(truncatingIfNeeded: 48 &+ value)
            count += 1
            return
        }
        var digits = 0
        var v = value
        while v > 0 {
            digits += 1
            v /= 10
        }
        v = value
        var i = count + digits - 1
        while v > 0 {
            buffer[i] = UInt8(truncatingIfNeeded: 48 &+ v % 10)
            v /= 10
            i -= 1
        }
        count += digits
    }

    @inline(__always)
    public mutating func decimal(_ value: Int64) {
        if value < 0 {
            byte(UInt8(ascii: "-"))
            decimal(UInt64(bitPattern: 0 &- value))
        } else {
            decimal(UInt64(value))
        }
    }

    @inline(__always)
    public mutating func decimal(_ value: Int) { decimal(Int64(value)) }

    /// Lower-case hexadecimal digits, zero-padded to `width`.
    public mutating func hex(_ value: UInt64, width: Int = 1) {
        var digits = 1
        var v = value >> 4
        while v > 0 {
            digits += 1
            v >>= 4
        }
        let total = max(digits, width)
        reserve(total)
        for i in 0..<(total - digits) { buffer[count + i] = UInt8(ascii: "0") }
        var shift = (digits - 1) * 4
        var i = count + total - digits
        while shift >= 0 {
            let d = UInt8((value >> UInt64(shift)) & 0xf)
            buffer[i] = d < 10 ? 48 + d : 87 + d
            i += 1
            shift -= 4
        }
        count += total
    }

    /// A JSON string literal, escaped.
    @inline(__always)
    public mutating func jsonString(_ raw: UnsafeRawBufferPointer) {
        reserve(raw.count + 2)
        buffer[count] = UInt8(ascii: "\"")
        count += 1
        var plain = true
        for b in raw where b < 0x20 || b == 0x22 || b == 0x5c {
            plain = false
            break
        }
        if plain {
            if let base = raw.baseAddress, raw.count > 0 {
                (buffer + count).update(from: base.assumingMemoryBound(to: UInt8.self), count: raw.count)
            }
            count += raw.count
        } else {
            for b in raw {
                switch b {
                case 0x22:
                    byte(0x5c)
                    byte(0x22)
                case 0x5c:
                    byte(0x5c)
                    byte(0x5c)
                case 0x0a:
                    byte(0x5c)
                    byte(UInt8(ascii: "n"))
                case 0x0d:
                    byte(0x5c)
                    byte(UInt8(ascii: "r"))
                case 0x09:
                    byte(0x5c)
                    byte(UInt8(ascii: "t"))
                case 0..<0x20:
                    write("\\u00")
                    hex(UInt64(b), width: 2)
                default: byte(b)
                }
            }
        }
        byte(UInt8(ascii: "\""))
        flushIfNeeded()
    }

    public mutating func jsonString(_ s: String) {
        var s = s
        s.withUTF8 { jsonString(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    public mutating func flushIfNeeded() {
        if fd >= 0 && count >= flushThreshold { flush() }
    }

    /// Writes out everything buffered (only for a writer with a descriptor).
    public mutating func flush() {
        guard fd >= 0, count > 0 else { return }
        try? FileSystem.writeAll(fd: fd, UnsafeRawBufferPointer(start: buffer, count: count), context: "output")
        count = 0
    }

    /// The accumulated bytes (for a writer without a descriptor).
    public var bytes: [UInt8] {
        Array(UnsafeBufferPointer(start: buffer, count: count))
    }

    /// Flushes and returns whatever remains buffered.
    public consuming func finish() -> [UInt8] {
        flush()
        return bytes
    }
}
