// SPDX-License-Identifier: GPL-2.0-only

/// A JSON value whose objects keep their keys in insertion order, so every
/// `--json` output has one stable shape.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    // MARK: - Convenience

    public static func integer<T: BinaryInteger>(_ v: T) -> JSON { .int(Int64(truncatingIfNeeded: v)) }
    public static func optional(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
    public static func strings(_ items: [String]) -> JSON { .array(items.map { .string($0) }) }

    /// The value of `key` in an object, or nil.
    public subscript(key: String) -> JSON? {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }

    public subscript(index: Int) -> JSON? {
        if case .array(let items) = self, items.indices.contains(index) { return items[index] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public var intValue: Int64? {
        switch self {
        case .int(let v): return v
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let d): return d
        default: return nil
        }
    }
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }
    public var objectValue: [(String, JSON)]? {
        if case .object(let o) = self { return o }
        return nil
    }
    public var isNull: Bool { self == .null }

    // MARK: - Writing

    /// Serializes compactly, or with two-space indentation when `pretty`.
    public func serialized(pretty: Bool = false) -> String {
        var out = ByteWriter()
        write(to: &out, pretty: pretty, indent: 0)
        return String(decoding: out.finish(), as: UTF8.self)
    }

    public func write(to out: inout ByteWriter, pretty: Bool = false, indent: Int = 0) {
        func newline(_ level: Int) {
            guard pretty else { return }
            out.byte(10)
            for _ in 0..<(level * 2) { out.byte(32) }
        }
        switch self {
        case .null: out.write("null")
        case .bool(let b): out.write(b ? "true" : "false")
        case .int(let v): out.decimal(v)
        case .double(let d):
            if d.isFinite {
                if d == d.rounded() && abs(d) < 1e15 {
                    out.decimal(Int64(d))
                } else {
                    out.write(String(d))
                }
            } else {
                out.write("null")
            }
        case .string(let s): out.jsonString(s)
        case .array(let items):
            if items.isEmpty {
                out.write("[]")
                return
            }
            out.byte(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.byte(UInt8(ascii: ",")) }
                newline(indent + 1)
                item.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            out.byte(UInt8(ascii: "]"))
        case .object(let pairs):
            if pairs.isEmpty {
                out.write("{}")
                return
            }
            out.byte(UInt8(ascii: "{"))
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out.byte(UInt8(ascii: ",")) }
                newline(indent + 1)
                out.jsonString(key)
                out.byte(UInt8(ascii: ":"))
                if pretty { out.byte(32) }
                value.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            out.byte(UInt8(ascii: "}"))
        }
    }

    // MARK: - Parsing

    /// Parses JSON text. Errors name the byte offset.
    public static func parse(_ text: String) throws(PlatformError) -> JSON {
        try parse(Array(text.utf8))
    }

    public static func parse(_ bytes: [UInt8]) throws(PlatformError) -> JSON {
        var parser = JSONParser(bytes: bytes)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        if parser.offset != bytes.count { throw parser.fail("trailing data") }
        return value
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var offset = 0

    func fail(_ what: String) -> PlatformError {
        PlatformError(.invalidData, "invalid JSON at byte \(offset): \(what)")
    }

    mutating func skipSpace() {
        while offset < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[offset]) { offset += 1 }
    }

    mutating func expect(_ literal: String) throws(PlatformError) {
        for b in literal.utf8 {
            guard offset < bytes.count, bytes[offset] == b else { throw fail("expected \(literal)") }
            offset += 1
        }
    }

    mutating func value(depth: Int) throws(PlatformError) -> JSON {
        guard depth < 512 else { throw fail("nesting too deep") }
        skipSpace()
        guard offset < bytes.count else { throw fail("unexpected end") }
        switch bytes[offset] {
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "["):
            offset += 1
            var items: [JSON] = []
            skipSpace()
            if offset < bytes.count && bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                return .array([])
            }
            while true {
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard offset < bytes.count else { throw fail("unterminated array") }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                    continue
                }
                if bytes[offset] == UInt8(ascii: "]") {
                    offset += 1
                    return .array(items)
                }
                throw fail("expected , or ]")
            }
        case UInt8(ascii: "{"):
            offset += 1
            var pairs: [(String, JSON)] = []
            skipSpace()
            if offset < bytes.count && bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                return .object([])
            }
            while true {
                skipSpace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected key") }
                let key = try string()
                skipSpace()
                try expect(":")
                pairs.append((key, try value(depth: depth + 1)))
                skipSpace()
                guard offset < bytes.count else { throw fail("unterminated object") }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                    continue
                }
                if bytes[offset] == UInt8(ascii: "}") {
                    offset += 1
                    return .object(pairs)
                }
                throw fail("expected , or }")
            }
        default:
            return try number()
        }
    }

    mutating func number() throws(PlatformError) -> JSON {
        let start = offset
        var isFloat = false
        while offset < bytes.count {
            let b = bytes[offset]
            if (b >= 48 && b <= 57) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") {
                offset += 1
            } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                isFloat = true
                offset += 1
            } else {
                break
            }
        }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        if !isFloat, let v = Int64(text) { return .int(v) }
        if let d = Double(text) { return .double(d) }
        offset = start
        throw fail("invalid value")
    }

    mutating func string() throws(PlatformError) -> String {
        offset += 1
        var out: [UInt8] = []
        while offset < bytes.count {
            let b = bytes[offset]
            offset += 1
            if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                continue
            }
            guard offset < bytes.count else { break }
            let e = bytes[offset]
            offset += 1
            switch e {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "u"):
                guard offset + 4 <= bytes.count,
                    var code = UInt32(String(decoding: bytes[offset..<offset + 4], as: UTF8.self), radix: 16)
                else { throw fail("bad \\u escape") }
                offset += 4
                if code >= 0xD800 && code < 0xDC00, offset + 6 <= bytes.count, bytes[offset] == 0x5c,
                    let low = UInt32(String(decoding: bytes[offset + 2..<offset + 6], as: UTF8.self), radix: 16),
                    low >= 0xDC00 && low < 0xE000
                {
                    offset += 6
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: out.append(e)
            }
        }
        throw fail("unterminated string")
    }
}
