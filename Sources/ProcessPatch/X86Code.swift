// SPDX-License-Identifier: GPL-2.0-only

/// The few x86-64 encodings the process patcher writes: jumps, the dispatch
/// thunk, and instructions moved from a function's entry. Every
/// architecture-specific byte Suture writes into a process comes from here.
public enum X86Code {
    /// Length of the jump written at an old function's entry (`jmp rel32`).
    public static let entryJumpLength = 5

    /// `endbr64`: the landing pad `-fcf-protection` puts at the entry of every
    /// function an indirect call or jump may reach (IBT).
    public static let endbr64: [UInt8] = [0xf3, 0x0f, 0x1e, 0xfa]

    /// Bytes at the start of a function to keep before the entry jump: the
    /// `endbr64` landing pad, so that an indirect call still lands on it
    /// (and then takes the jump), as IBT requires.
    public static func landingPadLength(_ function: [UInt8]) -> Int {
        function.starts(with: endbr64) ? endbr64.count : 0
    }

    /// The `rel32` from the end of an instruction at `next` to `target`, if it fits.
    public static func rel32(from next: UInt64, to target: UInt64) -> Int32? {
        let delta = Int64(bitPattern: target &- next)
        guard delta >= Int64(Int32.min) && delta <= Int64(Int32.max) else { return nil }
        return Int32(delta)
    }

    /// `jmp rel32` at `address` to `target`.
    public static func jump(at address: UInt64, to target: UInt64) -> [UInt8]? {
        guard let rel = rel32(from: address &+ 5, to: target) else { return nil }
        var b: [UInt8] = [0xe9]
        b.appendLE(UInt32(bitPattern: rel))
        return b
    }

    /// `jmp *slot(%rip)` at `address`: the far-call stub for a function more
    /// than 2 GiB away, whose address is in the 8-byte `slot`.
    public static func indirectJump(at address: UInt64, slot: UInt64) -> [UInt8]? {
        guard let rel = rel32(from: address &+ 6, to: slot) else { return nil }
        var b: [UInt8] = [0xff, 0x25]
        b.appendLE(UInt32(bitPattern: rel))
        return b
    }

    /// The dispatcher placed in front of an old function's moved entry
    /// instructions. It reads the area's mode byte at `flag`: 0 runs the old
    /// code, 1 the new code, and 2 or 3 (a per-thread transition toward new
    /// or toward old) look up the calling thread's byte in `table`, indexed
    /// by its thread ID, read from its thread control block at
    /// `%fs:tidOffset`: 1 old, 2 new, 0 (a thread Suture has not marked, such
    /// as one created during the transition) new under mode 2 and old under
    /// mode 3. It clobbers only R11 and EFLAGS, which no calling convention
    /// passes into a function, and uses one stack slot below the stack
    /// pointer (free at a function's entry) to keep RAX.
    ///
    /// ```
    ///  0  cmpb $1, flag(%rip)        48  cmp $1, %r11b
    ///  7  je new                     52  je old
    /// 13  jb old                     58  cmp $2, %r11b
    /// 19  push %rax                  62  je new
    /// 20  mov %fs:tidOffset, %eax    68  jmp default
    /// 28  cmp $entries, %eax         70  pop %rax
    /// 33  jae 70                     71  default: cmpb $2, flag(%rip)
    /// 35  lea table(%rip), %r11      78  je new
    /// 42  movzbl (%r11,%rax), %r11d  84  old: the moved entry
    /// 47  pop %rax
    /// ```
    public static func threadDispatch(
        at address: UInt64, flag: UInt64, table: UInt64, entries: UInt32,
        tidOffset: UInt32, new: UInt64
    ) -> [UInt8]? {
        var b: [UInt8] = []
        func rel(_ end: Int, _ target: UInt64) -> Bool {
            guard let r = rel32(from: address &+ UInt64(end), to: target) else { return false }
            b.appendLE(UInt32(bitPattern: r))
            return true
        }
        let old = address &+ UInt64(threadDispatchLength)
        b += [0x80, 0x3d]
        guard rel(7, flag) else { return nil }
        b.append(0x01)
        b += [0x0f, 0x84]
        guard rel(13, new) else { return nil }
        b += [0x0f, 0x82]
        guard rel(19, old) else { return nil }
        b.append(0x50)
        b += [0x64, 0x8b, 0x04, 0x25]
        b.appendLE(tidOffset)
        b.append(0x3d)
        b.appendLE(entries)
        b += [0x73, 70 - 35]
        b += [0x4c, 0x8d, 0x1d]
        guard rel(42, table) else { return nil }
        b += [0x45, 0x0f, 0xb6, 0x1c, 0x03]
        b.append(0x58)
        b += [0x41, 0x80, 0xfb, 0x01]
        b += [0x0f, 0x84]
        guard rel(58, old) else { return nil }
        b += [0x41, 0x80, 0xfb, 0x02]
        b += [0x0f, 0x84]
        guard rel(68, new) else { return nil }
        b += [0xeb, 71 - 70]
        b.append(0x58)
        b += [0x80, 0x3d]
        guard rel(78, flag) else { return nil }
        b.append(0x02)
        b += [0x0f, 0x84]
        guard rel(84, new) else { return nil }
        return b
    }
    public static let threadDispatchLength = 84
    /// Where the dispatcher holds the thread ID's offset in the thread
    /// control block (a 32-bit field), filled in once it is known.
    public static let threadDispatchTIDOffsetField = 24

    /// Why instructions cannot be moved.
    public struct MoveError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The instructions at the start of a function, rewritten to run at
    /// `newAddress` and continue in the original function after them.
    public struct MovedEntry: Sendable {
        /// The rewritten instructions and, unless they end the flow, a jump back.
        public let code: [UInt8]
        /// Bytes of the original function they replace (≥ `entryJumpLength`,
        /// or fewer when the function returns or jumps away first).
        public let consumed: Int
    }

    /// Moves the first instructions of `entry` (the bytes at `oldAddress`)
    /// to `newAddress`: relative branches and RIP-relative operands are
    /// re-aimed at their original targets, short branches widened, and a
    /// jump back to the first instruction not moved is appended.
    public static func moveEntry(
        _ entry: [UInt8], from oldAddress: UInt64, to newAddress: UInt64,
        covering minimum: Int = entryJumpLength
    ) throws(MoveError) -> MovedEntry {
        var code: [UInt8] = []
        var consumed = 0
        var endsFlow = false
        while consumed < minimum {
            let i: Instruction
            do {
                i = try X86Decoder.decode(entry, at: consumed)
            } catch {
                throw MoveError(description: "cannot decode the instruction at entry+\(consumed): \(error.reason)")
            }
            let original = Array(entry[i.offset..<i.offset + i.length])
            let oldNext = oldAddress &+ UInt64(i.offset + i.length)
            let here = newAddress &+ UInt64(code.count)
            if let target = i.target(in: entry) {
                if target > 0 && target < minimum {
                    throw MoveError(
                        description:
                            "a branch at entry+\(i.offset) targets entry+\(target), inside the bytes the entry jump replaces"
                    )
                }
                let absolute = oldAddress &+ UInt64(bitPattern: Int64(target))
                let prefixes = Array(original[0..<i.prefixLength])
                var out: [UInt8]
                switch i.relative {
                case .jump:
                    out = prefixes + [0xe9]
                case .call:
                    out = prefixes + [0xe8]
                case .conditional(let cc):
                    out = prefixes + [0x0f, 0x80 | cc]
                case .other, .none:
                    throw MoveError(
                        description: "the instruction at entry+\(i.offset) (loop, jrcxz or xbegin) cannot be moved")
                }
                guard let rel = rel32(from: here &+ UInt64(out.count + 4), to: absolute) else {
                    throw MoveError(
                        description: "the branch at entry+\(i.offset) cannot reach its target from 0x\(hex(here))")
                }
                out.appendLE(UInt32(bitPattern: rel))
                code += out
            } else if let d = i.ripDisplacement {
                var out = original
                let displacement = Int32(bitPattern: original.loadLE(UInt32.self, at: d))
                let absolute = oldNext &+ UInt64(bitPattern: Int64(displacement))
                guard let rel = rel32(from: here &+ UInt64(i.length), to: absolute) else {
                    throw MoveError(
                        description:
                            "the RIP-relative operand at entry+\(i.offset) cannot reach 0x\(hex(absolute)) from 0x\(hex(here))"
                    )
                }
                out.storeLE(UInt32(bitPattern: rel), at: d)
                code += out
            } else {
                code += original
            }
            consumed += i.length
            if i.endsFlow {
                endsFlow = true
                break
            }
        }
        if !endsFlow {
            let here = newAddress &+ UInt64(code.count)
            guard let back = jump(at: here, to: oldAddress &+ UInt64(consumed)) else {
                throw MoveError(description: "cannot jump back to the old function from 0x\(hex(here))")
            }
            code += back
        }
        return MovedEntry(code: code, consumed: consumed)
    }

    /// Branch targets inside a function that land within the
    /// `entryJumpLength` bytes an entry jump overwrites (after the landing
    /// pad), other than their first byte. Decodes the whole function.
    public static func branchesIntoEntry(_ function: [UInt8]) throws(DecodeError) -> [(from: Int, to: Int)] {
        var result: [(Int, Int)] = []
        let pad = landingPadLength(function)
        for i in try X86Decoder.decodeAll(function) {
            if let t = i.target(in: function), t > pad && t < pad + entryJumpLength { result.append((i.offset, t)) }
        }
        return result
    }
}
