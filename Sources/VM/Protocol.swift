// SPDX-License-Identifier: GPL-2.0-only

/// The framed channel between the host and the guest agent, carried over
/// the guest's second serial port (ttyS1 in raw mode).
///
/// A frame is a magic byte, a kind byte, a little-endian 32-bit payload
/// length and the payload. The magic byte catches a channel that is out of
/// step (for example a tty that was not raw) at the first frame instead of
/// as a huge bogus length.
public struct Frame: Equatable, Sendable {
    public static let magic: UInt8 = 0xF5
    public static let headerSize = 6
    /// Larger payloads mean a corrupted channel, not a real message.
    public static let maximumPayload = 1 << 30

    public var kind: UInt8
    public var payload: [UInt8]

    public init(kind: UInt8, payload: [UInt8]) {
        self.kind = kind
        self.payload = payload
    }

    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = [Frame.magic, kind]
        bytes.reserveCapacity(Frame.headerSize + payload.count)
        appendLittleEndian(UInt32(payload.count), to: &bytes)
        bytes.append(contentsOf: payload)
        return bytes
    }
}

/// Splits a byte stream into frames as it arrives.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    /// False until the first frame when bytes before it are to be dropped.
    private var synchronized = true

    /// With `skippingLeadingNoise`, bytes before the first magic byte are
    /// dropped: UEFI firmware writes its console (text and escape
    /// sequences, never 0xF5) to every serial port before the kernel starts.
    public init(skippingLeadingNoise: Bool = false) {
        synchronized = !skippingLeadingNoise
    }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil if more bytes are needed.
    public mutating func next() throws(VMError) -> Frame? {
        if !synchronized {
            while start < buffer.count && buffer[start] != Frame.magic { start += 1 }
            if start < buffer.count { synchronized = true }
        }
        let available = buffer.count - start
        guard available >= Frame.headerSize else {
            compact()
            return nil
        }
        guard buffer[start] == Frame.magic else {
            throw VMError(
                .protocolError,
                "agent channel out of step: byte 0x\(String(buffer[start], radix: 16)) where a frame should start")
        }
        let length = Int(readLittleEndian(UInt32.self, buffer, at: start + 2))
        guard length <= Frame.maximumPayload else {
            throw VMError(.protocolError, "agent channel corrupted: frame of \(length) bytes")
        }
        guard available >= Frame.headerSize + length else {
            compact()
            return nil
        }
        let kind = buffer[start + 1]
        let payloadStart = start + Frame.headerSize
        let payload = Array(buffer[payloadStart..<payloadStart + length])
        start = payloadStart + length
        return Frame(kind: kind, payload: payload)
    }

    /// Bytes received but not yet returned as a frame.
    public var pendingCount: Int { buffer.count - start }

    private mutating func compact() {
        if start > 0 && (start > 65536 || start == buffer.count) {
            buffer.removeFirst(start)
            start = 0
        }
    }
}

// MARK: - Messages

/// What the host asks of the guest agent.
public enum HostMessage: Equatable, Sendable {
    /// Run a command line with `/bin/sh -c` as root.
    case run(command: String)
    /// Write a file (creating its parent directories) with a mode.
    case upload(path: String, mode: UInt32, contents: [UInt8])
    /// Like `upload`, with the contents in the first `length` bytes of the
    /// shared transfer region.
    case uploadShared(path: String, mode: UInt32, length: UInt64)
    /// Send a file's contents back (shared region when it fits).
    case download(path: String)
    /// Kill the running command's process group.
    case cancel
    /// The host has copied `sharedOutput` out of the shared region.
    case release

    static let runKind: UInt8 = 1
    static let releaseKind: UInt8 = 6
    static let uploadKind: UInt8 = 2
    static let cancelKind: UInt8 = 3
    static let uploadSharedKind: UInt8 = 4
    static let downloadKind: UInt8 = 5

    public var frame: Frame {
        var p = PayloadWriter()
        switch self {
        case .run(let command):
            p.string(command)
            return Frame(kind: HostMessage.runKind, payload: p.bytes)
        case .upload(let path, let mode, let contents):
            p.string(path)
            p.u32(mode)
            p.bytes(contents)
            return Frame(kind: HostMessage.uploadKind, payload: p.bytes)
        case .uploadShared(let path, let mode, let length):
            p.string(path)
            p.u32(mode)
            p.u64(length)
            return Frame(kind: HostMessage.uploadSharedKind, payload: p.bytes)
        case .download(let path):
            p.string(path)
            return Frame(kind: HostMessage.downloadKind, payload: p.bytes)
        case .cancel:
            return Frame(kind: HostMessage.cancelKind, payload: [])
        case .release:
            return Frame(kind: HostMessage.releaseKind, payload: [])
        }
    }

    public init(_ frame: Frame) throws(VMError) {
        var r = PayloadReader(frame.payload)
        switch frame.kind {
        case HostMessage.runKind: self = .run(command: try r.string())
        case HostMessage.uploadKind:
            self = .upload(path: try r.string(), mode: try r.u32(), contents: try r.bytes())
        case HostMessage.uploadSharedKind:
            self = .uploadShared(path: try r.string(), mode: try r.u32(), length: try r.u64())
        case HostMessage.downloadKind: self = .download(path: try r.string())
        case HostMessage.cancelKind: self = .cancel
        case HostMessage.releaseKind: self = .release
        default: throw VMError(.protocolError, "unknown host message kind \(frame.kind)")
        }
        try r.expectEnd()
    }
}

/// What the guest agent tells the host.
public enum GuestMessage: Equatable, Sendable {
    /// The agent is up. `log` holds the boot's kernel messages of warning
    /// level or worse; `taint` is `/proc/sys/kernel/tainted`;
    /// `sharedSize` is the size of the shared transfer region it mapped (0
    /// when there is none).
    case ready(release: String, taint: UInt64, log: String, sharedSize: UInt64)
    case stdout([UInt8])
    case stderr([UInt8])
    /// Output of the command in the first `length` bytes of the shared
    /// region; the agent waits for `release` before it reuses the region.
    case sharedOutput(toStdout: Bool, length: UInt64)
    /// The command ended with a shell-style status (128 + signal when
    /// killed); `log` holds every kernel message logged since the previous
    /// report.
    case exit(status: Int32, taint: UInt64, log: String)
    /// An upload succeeded.
    case done
    /// A request failed in the guest.
    case failed(String)
    /// A downloaded file's contents.
    case file([UInt8])
    /// A downloaded file's contents are the first `length` bytes of the
    /// shared region.
    case fileShared(length: UInt64)

    static let readyKind: UInt8 = 64
    static let stdoutKind: UInt8 = 65
    static let stderrKind: UInt8 = 66
    static let exitKind: UInt8 = 67
    static let doneKind: UInt8 = 68
    static let failedKind: UInt8 = 69
    static let fileKind: UInt8 = 70
    static let fileSharedKind: UInt8 = 71
    static let sharedOutputKind: UInt8 = 72

    public var frame: Frame {
        var p = PayloadWriter()
        switch self {
        case .ready(let release, let taint, let log, let sharedSize):
            p.string(release)
            p.u64(taint)
            p.string(log)
            p.u64(sharedSize)
            return Frame(kind: GuestMessage.readyKind, payload: p.bytes)
        case .stdout(let bytes):
            return Frame(kind: GuestMessage.stdoutKind, payload: bytes)
        case .stderr(let bytes):
            return Frame(kind: GuestMessage.stderrKind, payload: bytes)
        case .exit(let status, let taint, let log):
            p.u32(UInt32(bitPattern: status))
            p.u64(taint)
            p.string(log)
            return Frame(kind: GuestMessage.exitKind, payload: p.bytes)
        case .done:
            return Frame(kind: GuestMessage.doneKind, payload: [])
        case .failed(let message):
            p.string(message)
            return Frame(kind: GuestMessage.failedKind, payload: p.bytes)
        case .file(let bytes):
            return Frame(kind: GuestMessage.fileKind, payload: bytes)
        case .fileShared(let length):
            p.u64(length)
            return Frame(kind: GuestMessage.fileSharedKind, payload: p.bytes)
        case .sharedOutput(let toStdout, let length):
            p.u32(toStdout ? 1 : 2)
            p.u64(length)
            return Frame(kind: GuestMessage.sharedOutputKind, payload: p.bytes)
        }
    }

    public init(_ frame: Frame) throws(VMError) {
        var r = PayloadReader(frame.payload)
        switch frame.kind {
        case GuestMessage.readyKind:
            self = .ready(release: try r.string(), taint: try r.u64(), log: try r.string(), sharedSize: try r.u64())
        case GuestMessage.stdoutKind:
            self = .stdout(frame.payload)
            return
        case GuestMessage.stderrKind:
            self = .stderr(frame.payload)
            return
        case GuestMessage.fileKind:
            self = .file(frame.payload)
            return
        case GuestMessage.exitKind:
            self = .exit(status: Int32(bitPattern: try r.u32()), taint: try r.u64(), log: try r.string())
        case GuestMessage.doneKind: self = .done
        case GuestMessage.failedKind: self = .failed(try r.string())
        case GuestMessage.fileSharedKind: self = .fileShared(length: try r.u64())
        case GuestMessage.sharedOutputKind:
            self = .sharedOutput(toStdout: try r.u32() == 1, length: try r.u64())
        default: throw VMError(.protocolError, "unknown guest message kind \(frame.kind)")
        }
        try r.expectEnd()
    }
}

// MARK: - Payload fields

/// Appends fixed-width little-endian integers and length-prefixed bytes.
struct PayloadWriter {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { appendLittleEndian(v, to: &bytes) }
    mutating func u64(_ v: UInt64) { appendLittleEndian(v, to: &bytes) }
    mutating func bytes(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
    mutating func string(_ s: String) { bytes(Array(s.utf8)) }
}

/// Reads what `PayloadWriter` wrote, with bounds checks.
struct PayloadReader {
    private let data: [UInt8]
    private var offset = 0

    init(_ data: [UInt8]) { self.data = data }

    private mutating func need(_ n: Int, _ what: String) throws(VMError) {
        guard n >= 0, data.count - offset >= n else {
            throw VMError(
                .protocolError,
                "truncated message: \(what) at offset \(offset) needs \(n) bytes, \(data.count - offset) left")
        }
    }

    mutating func u32() throws(VMError) -> UInt32 {
        try need(4, "u32")
        defer { offset += 4 }
        return readLittleEndian(UInt32.self, data, at: offset)
    }

    mutating func u64() throws(VMError) -> UInt64 {
        try need(8, "u64")
        defer { offset += 8 }
        return readLittleEndian(UInt64.self, data, at: offset)
    }

    mutating func bytes() throws(VMError) -> [UInt8] {
        let n = Int(try u32())
        try need(n, "byte string")
        defer { offset += n }
        return Array(data[offset..<offset + n])
    }

    mutating func string() throws(VMError) -> String {
        String(decoding: try bytes(), as: UTF8.self)
    }

    func expectEnd() throws(VMError) {
        guard offset == data.count else {
            throw VMError(.protocolError, "message has \(data.count - offset) unexpected trailing bytes")
        }
    }
}

func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    var v = value.littleEndian
    withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
}

func readLittleEndian<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
    var value: T = 0
    for i in 0..<MemoryLayout<T>.size {
        value |= T(bytes[offset + i]) << (8 * i)
    }
    return value
}
