// SPDX-License-Identifier: GPL-2.0-only

/// One decoded x86-64 instruction: where it is, how long it is, and what
/// moving it elsewhere would need. The decoder knows lengths and operands
/// that depend on the instruction's address, nothing about semantics.
public struct Instruction: Sendable, Equatable {
    /// A branch whose target is relative to the next instruction.
    public enum Relative: Sendable, Equatable {
        case none
        /// `jmp rel8/rel32`.
        case jump
        /// `jcc rel8/rel32`, with the condition code (0…15).
        case conditional(UInt8)
        /// `call rel32`.
        case call
        /// `loop`, `loope`, `loopne`, `jrcxz` (rel8 only) and `xbegin`.
        case other
    }

    /// Offset of the first byte in the decoded buffer.
    public let offset: Int
    public let length: Int
    /// Bytes of legacy prefixes (and REX) before the opcode.
    public let prefixLength: Int
    public let relative: Relative
    /// Offset and size (1 or 4) of the relative branch field within the instruction.
    public let relativeField: (offset: Int, size: Int)?
    /// Offset of a RIP-relative 32-bit displacement within the instruction.
    public let ripDisplacement: Int?
    /// Execution never continues with the next instruction: `ret`, `jmp`
    /// (direct or indirect), `ud2`, `hlt`, `int3`.
    public let endsFlow: Bool

    public static func == (a: Instruction, b: Instruction) -> Bool {
        a.offset == b.offset && a.length == b.length && a.relative == b.relative
            && a.relativeField?.offset == b.relativeField?.offset && a.relativeField?.size == b.relativeField?.size
            && a.ripDisplacement == b.ripDisplacement && a.endsFlow == b.endsFlow
    }

    /// The branch target as an offset in the decoded buffer, for relative branches.
    public func target(in bytes: [UInt8]) -> Int? {
        guard let field = relativeField else { return nil }
        let at = offset + field.offset
        let displacement: Int
        if field.size == 1 {
            displacement = Int(Int8(bitPattern: bytes[at]))
        } else {
            displacement = Int(Int32(bitPattern: bytes.loadLE(UInt32.self, at: at)))
        }
        return offset + length + displacement
    }
}

/// Why an instruction could not be decoded.
public struct DecodeError: Error, Sendable, CustomStringConvertible {
    public let offset: Int
    public let bytes: [UInt8]
    public let reason: String
    public var description: String {
        "byte \(offset): \(reason) (\(bytes.map { String($0, radix: 16) }.joined(separator: " ")))"
    }
}

/// An x86-64 (64-bit mode) instruction-length decoder covering the general,
/// x87, SSE, AVX (VEX) and AVX-512 (EVEX) encodings that compilers emit.
public enum X86Decoder {
    // Operand shapes, per opcode.
    enum Immediate: UInt8 {
        case none = 0, byte, word, z, v, moffs, enterForm, groupF6, groupF7, rel8, rel32
    }
    struct Shape {
        var modrm: Bool
        var immediate: Immediate
        var invalid: Bool = false
    }

    // MARK: - Tables

    static let oneByte: [Shape] = {
        var t = [Shape](repeating: Shape(modrm: false, immediate: .none), count: 256)
        func set(_ ops: [Int], _ modrm: Bool, _ imm: Immediate) {
            for o in ops { t[o] = Shape(modrm: modrm, immediate: imm) }
        }
        func invalid(_ ops: [Int]) { for o in ops { t[o].invalid = true } }
        // ALU blocks 00-3F.
        for base in stride(from: 0x00, through: 0x38, by: 8) {
            set([base, base + 1, base + 2, base + 3], true, .none)
            set([base + 4], false, .byte)
            set([base + 5], false, .z)
        }
        invalid([
            0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0x82, 0x9a,
            0xce, 0xd4, 0xd5, 0xd6, 0xea,
        ])
        set([0x63], true, .none)
        set([0x68], false, .z)
        set([0x69], true, .z)
        set([0x6a], false, .byte)
        set([0x6b], true, .byte)
        set(Array(0x70...0x7f), false, .rel8)
        set([0x80, 0x83], true, .byte)
        set([0x81], true, .z)
        set(Array(0x84...0x8f), true, .none)
        set(Array(0xa0...0xa3), false, .moffs)
        set([0xa8], false, .byte)
        set([0xa9], false, .z)
        set(Array(0xb0...0xb7), false, .byte)
        set(Array(0xb8...0xbf), false, .v)
        set([0xc0, 0xc1, 0xc6], true, .byte)
        set([0xc7], true, .z)
        set([0xc2, 0xca], false, .word)
        set([0xc8], false, .enterForm)
        set([0xcd], false, .byte)
        set(Array(0xd0...0xd3), true, .none)
        set(Array(0xd8...0xdf), true, .none)
        set(Array(0xe0...0xe3), false, .rel8)
        set(Array(0xe4...0xe7), false, .byte)
        set([0xe8, 0xe9], false, .rel32)
        set([0xeb], false, .rel8)
        set([0xf6], true, .groupF6)
        set([0xf7], true, .groupF7)
        set([0xfe, 0xff], true, .none)
        return t
    }()

    static let twoByte: [Shape] = {
        var t = [Shape](repeating: Shape(modrm: true, immediate: .none), count: 256)
        func set(_ ops: [Int], _ modrm: Bool, _ imm: Immediate) {
            for o in ops { t[o] = Shape(modrm: modrm, immediate: imm) }
        }
        func invalid(_ ops: [Int]) { for o in ops { t[o].invalid = true } }
        set([0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e], false, .none)
        set([0x0f], true, .byte)  // 3DNow!
        set(Array(0x30...0x37), false, .none)
        set(Array(0x70...0x73), true, .byte)
        set([0x77], false, .none)
        set(Array(0x80...0x8f), false, .rel32)
        set([0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa], false, .none)
        set([0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6], true, .byte)
        set(Array(0xc8...0xcf), false, .none)
        invalid([
            0x04, 0x0a, 0x0c, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
            0x7a, 0x7b, 0xa6, 0xa7,
        ])
        return t
    }()

    // MARK: - Decoding

    /// Decodes the instruction at `offset` of `bytes`.
    public static func decode(_ bytes: [UInt8], at offset: Int) throws(DecodeError) -> Instruction {
        var p = offset
        func fail(_ reason: String) -> DecodeError {
            DecodeError(offset: offset, bytes: Array(bytes[offset..<min(bytes.count, offset + 15)]), reason: reason)
        }
        func byte() throws(DecodeError) -> UInt8 {
            guard p < bytes.count else { throw fail("instruction runs past the end of the code") }
            defer { p += 1 }
            return bytes[p]
        }
        func peek(_ k: Int = 0) throws(DecodeError) -> UInt8 {
            guard p + k < bytes.count else { throw fail("instruction runs past the end of the code") }
            return bytes[p + k]
        }

        var operand16 = false
        var address32 = false
        var rexW = false
        // Legacy prefixes, then REX (which counts only right before the opcode).
        prefixes: while true {
            let b = try peek()
            switch b {
            case 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65:
                p += 1
                rexW = false
            case 0x66:
                p += 1
                operand16 = true
                rexW = false
            case 0x67:
                p += 1
                address32 = true
                rexW = false
            case 0x40...0x4f:
                p += 1
                rexW = b & 8 != 0
            default:
                break prefixes
            }
            if p - offset > 14 { throw fail("too many prefixes") }
        }
        let prefixLength = p - offset
        let opcode = try byte()

        var shape: Shape
        var relative = Instruction.Relative.none
        var endsFlow = false
        var modrmRegField: UInt8 = 0

        switch opcode {
        case 0x0f:
            let second = try byte()
            switch second {
            case 0x38:
                _ = try byte()
                shape = Shape(modrm: true, immediate: .none)
            case 0x3a:
                _ = try byte()
                shape = Shape(modrm: true, immediate: .byte)
            default:
                shape = twoByte[Int(second)]
                if shape.invalid { throw fail("invalid two-byte opcode 0f \(String(second, radix: 16))") }
                if (0x80...0x8f).contains(second) { relative = .conditional(second & 0x0f) }
                if second == 0x0b { endsFlow = true }  // ud2
            }
        case 0xc4, 0xc5:
            // VEX: the map selects the opcode table; every VEX instruction but
            // vzeroupper/vzeroall has a ModRM byte.
            var map: UInt8 = 1
            if opcode == 0xc4 {
                map = try byte() & 0x1f
                _ = try byte()
            } else {
                _ = try byte()
            }
            let op = try byte()
            switch map {
            case 1:
                if op == 0x77 {
                    shape = Shape(modrm: false, immediate: .none)
                } else {
                    shape = Shape(
                        modrm: true,
                        immediate: [0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6].contains(op) ? .byte : .none)
                }
            case 2: shape = Shape(modrm: true, immediate: .none)
            case 3: shape = Shape(modrm: true, immediate: .byte)
            default: throw fail("unknown VEX opcode map \(map)")
            }
        case 0x62:
            // EVEX (62 is not BOUND in 64-bit mode).
            let p0 = try byte()
            _ = try byte()
            _ = try byte()
            let op = try byte()
            switch p0 & 0x7 {
            case 1:
                shape = Shape(
                    modrm: true,
                    immediate: [0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6].contains(op) ? .byte : .none)
            case 2, 5, 6: shape = Shape(modrm: true, immediate: .none)
            case 3: shape = Shape(modrm: true, immediate: .byte)
            default: throw fail("unknown EVEX opcode map \(p0 & 7)")
            }
        case 0x8f:
            // POP r/m64, or an AMD XOP prefix when ModRM.reg is not 0.
            if (try peek() >> 3) & 7 != 0 { throw fail("XOP instructions are not supported") }
            shape = oneByte[0x8f]
        default:
            shape = oneByte[Int(opcode)]
            if shape.invalid { throw fail("invalid opcode \(String(opcode, radix: 16)) in 64-bit mode") }
            switch opcode {
            case 0x70...0x7f: relative = .conditional(opcode & 0x0f)
            case 0xeb, 0xe9:
                relative = .jump
                endsFlow = true
            case 0xe8: relative = .call
            case 0xe0...0xe3: relative = .other
            case 0xc3, 0xc2, 0xcb, 0xca, 0xcf, 0xf4, 0xcc: endsFlow = true
            default: break
            }
        }

        // ModRM, SIB and displacement.
        var ripDisplacement: Int?
        if shape.modrm {
            let modrm = try byte()
            let mod = modrm >> 6
            let rm = modrm & 7
            modrmRegField = (modrm >> 3) & 7
            if mod != 3 {
                if rm == 4 {
                    let sib = try byte()
                    if mod == 0 && sib & 7 == 5 { p += 4 }
                } else if mod == 0 && rm == 5 {
                    ripDisplacement = p - offset
                    p += 4
                }
                if mod == 1 { p += 1 } else if mod == 2 { p += 4 }
            }
            if opcode == 0xff && (modrmRegField == 4 || modrmRegField == 5) { endsFlow = true }  // jmp r/m
            if opcode == 0xc7 && modrm == 0xf8 { relative = .other }  // xbegin rel32
        }

        // Immediate.
        var immediate = 0
        var relativeField: (offset: Int, size: Int)?
        switch shape.immediate {
        case .none: break
        case .byte: immediate = 1
        case .word: immediate = 2
        case .z: immediate = operand16 && !rexW ? 2 : 4
        case .v: immediate = rexW ? 8 : (operand16 ? 2 : 4)
        case .moffs: immediate = address32 ? 4 : 8
        case .enterForm: immediate = 3
        case .groupF6: immediate = modrmRegField < 2 ? 1 : 0
        case .groupF7: immediate = modrmRegField < 2 ? (operand16 && !rexW ? 2 : 4) : 0
        case .rel8:
            relativeField = (p - offset, 1)
            immediate = 1
        case .rel32:
            relativeField = (p - offset, 4)
            immediate = 4
        }
        if relative == .other && opcode == 0xc7 { relativeField = (p - offset, 4) }
        p += immediate
        guard p <= bytes.count else { throw fail("instruction runs past the end of the code") }
        guard p - offset <= 15 else { throw fail("instruction longer than 15 bytes") }
        return Instruction(
            offset: offset, length: p - offset, prefixLength: prefixLength, relative: relative,
            relativeField: relativeField, ripDisplacement: ripDisplacement, endsFlow: endsFlow)
    }

    /// Decodes `bytes[range]` linearly, one instruction after the other.
    public static func decodeAll(_ bytes: [UInt8], range: Range<Int>? = nil) throws(DecodeError) -> [Instruction] {
        let range = range ?? 0..<bytes.count
        var result: [Instruction] = []
        var p = range.lowerBound
        while p < range.upperBound {
            let i = try decode(bytes, at: p)
            result.append(i)
            p += i.length
        }
        return result
    }
}
