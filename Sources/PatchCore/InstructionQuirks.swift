// SPDX-License-Identifier: GPL-2.0-only
import ELF

/// Where a PC-relative reference in code really points. The relocation
/// stores `target - (field + 4)` plus whatever the instruction adds after
/// its displacement, so the datum is at `symbol + addend + 4 + immediate`.
/// Knowing the immediate's size needs a little instruction decoding, which
/// lives here, per architecture.
enum InstructionQuirks {
    /// Bytes from the end of a 32-bit PC-relative field to the end of its
    /// instruction, for a field at `offset` in `code`; nil when the
    /// architecture has no table or the bytes do not decode.
    static func bytesAfterField(_ architecture: Architecture, code: ELFBytes, offset: Int) -> Int? {
        switch architecture.machine {
        case Machine.x86_64: return x86_64BytesAfterDisplacement(code, offset)
        default: return nil
        }
    }

    /// x86-64: `call/jmp/jcc rel32` end with the field; RIP-relative ModRM
    /// operands (`mod=00 rm=101`) may be followed by an 8-, 16- or 32-bit
    /// immediate, which the opcode decides.
    static func x86_64BytesAfterDisplacement(_ code: ELFBytes, _ offset: Int) -> Int? {
        guard offset >= 1, offset + 4 <= code.count else { return nil }
        let before = code[offset - 1]
        // Branches: e8/e9 rel32, 0f 8x rel32.
        if before == 0xe8 || before == 0xe9 { return 0 }
        if offset >= 2 && code[offset - 2] == 0x0f && (before & 0xf0) == 0x80 { return 0 }
        // RIP-relative memory operand: the byte before the field is ModRM.
        guard (before & 0xc7) == 0x05, offset >= 2 else { return 0 }
        let modrmReg = (before >> 3) & 7
        let opcode = code[offset - 2]
        var twoByte = false
        var threeByte38 = false
        var threeByte3A = false
        if offset >= 3 && code[offset - 3] == 0x0f { twoByte = true }
        if offset >= 4 && code[offset - 4] == 0x0f && code[offset - 3] == 0x3a {
            threeByte3A = true
            twoByte = false
        }
        if offset >= 4 && code[offset - 4] == 0x0f && code[offset - 3] == 0x38 {
            threeByte38 = true
            twoByte = false
        }
        // An operand-size prefix anywhere in the few bytes before the opcode.
        var operand16 = false
        let opcodeStart = offset - 2 - (twoByte ? 1 : 0) - ((threeByte38 || threeByte3A) ? 2 : 0)
        var p = opcodeStart - 1
        while p >= 0 && p >= opcodeStart - 4 {
            let b = code[p]
            if b == 0x66 { operand16 = true }
            if !(b == 0x66 || b == 0x67 || b == 0xf2 || b == 0xf3 || b == 0xf0 || (b & 0xf0) == 0x40
                || b == 0x2e || b == 0x3e || b == 0x26 || b == 0x36 || b == 0x64 || b == 0x65)
            {
                break
            }
            p -= 1
        }
        if threeByte3A { return 1 }
        if threeByte38 { return 0 }
        if twoByte {
            switch opcode {
            case 0xba, 0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xc2, 0xc4, 0xc5, 0xc6: return 1
            default: return 0
            }
        }
        switch opcode {
        case 0x80, 0x82, 0x83, 0xc0, 0xc1, 0xc6, 0x6b: return 1
        case 0x81, 0xc7, 0x69: return operand16 ? 2 : 4
        case 0xf6: return modrmReg <= 1 ? 1 : 0
        case 0xf7: return modrmReg <= 1 ? (operand16 ? 2 : 4) : 0
        default: return 0
        }
    }
}
