// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import ProcessPatch
import Testing

/// The instruction-length decoder against objdump, and moved entry code
/// against objdump's reading of it.
@Suite struct DecoderTests {
    /// Instruction start addresses objdump finds in a section (linear sweep).
    static func objdumpStarts(_ path: String, section: String) throws -> [UInt64] {
        let text = try Command.output(["objdump", "-d", "-w", "--no-show-raw-insn", "-j", section, path])
        var starts: [UInt64] = []
        for line in text.split(separator: "\n") {
            guard line.hasPrefix(" "), let colon = line.firstIndex(of: ":") else { continue }
            let address = String(line[..<colon]).trimmingWhitespace()
            guard let value = UInt64(address, radix: 16), line[line.index(after: colon)...].hasPrefix("\t") else {
                continue
            }
            starts.append(value)
        }
        return starts
    }

    @Test(arguments: [
        "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    ])
    func agreesWithObjdump(_ path: String) throws {
        let file = try ELFFile.open(path)
        let text = try #require(file.section(named: ".text"))
        let bytes = file.data(text).array
        let expected = try DecoderTests.objdumpStarts(path, section: ".text")
        try #require(expected.count > 1000)
        var ours: [UInt64] = []
        var offset = 0
        var failure: String?
        while offset < bytes.count {
            do {
                let i = try X86Decoder.decode(bytes, at: offset)
                ours.append(text.address + UInt64(offset))
                offset += i.length
            } catch {
                failure = "\(path) at 0x\(String(text.address + UInt64(offset), radix: 16)): \(error)"
                break
            }
        }
        #expect(failure == nil, "\(failure ?? "")")
        let mismatch = zip(ours, expected).first { $0 != $1 }
        #expect(
            mismatch == nil,
            "first disagreement with objdump in \(path): ours 0x\(String(mismatch?.0 ?? 0, radix: 16)), objdump 0x\(String(mismatch?.1 ?? 0, radix: 16))"
        )
        #expect(ours.count == expected.count, "\(path): \(ours.count) instructions, objdump \(expected.count)")
    }

    @Test func relativeBranchesAndRIPOperands() throws {
        // jne +0x10; call +0x100; mov 0x2fe1(%rip),%eax; jmp *0x10(%rip); ret
        let code: [UInt8] = [
            0x75, 0x10, 0xe8, 0x00, 0x01, 0x00, 0x00, 0x8b, 0x05, 0xe1, 0x2f, 0x00, 0x00,
            0xff, 0x25, 0x10, 0x00, 0x00, 0x00, 0xc3,
        ]
        let list = try X86Decoder.decodeAll(code)
        #expect(list.map(\.length) == [2, 5, 6, 6, 1])
        #expect(list[0].relative == .conditional(5) && list[0].target(in: code) == 0x12)
        #expect(list[1].relative == .call && list[1].target(in: code) == 7 + 0x100)
        #expect(list[2].ripDisplacement == 2)
        #expect(list[3].ripDisplacement == 2 && list[3].endsFlow)
        #expect(list[4].endsFlow)
    }

    /// objdump's reading of code placed at `address`.
    static func disassemble(_ code: [UInt8], at address: UInt64) throws -> String {
        let folder = try TemporaryDirectory(prefix: "suture-decoder")
        defer { folder.remove() }
        let path = Path.join(folder.path, "code.bin")
        try FileSystem.write(path, code)
        return try Command.output([
            "objdump", "-D", "-w", "--no-show-raw-insn", "-b", "binary", "-m", "i386:x86-64",
            "--adjust-vma=0x\(String(address, radix: 16))", path,
        ])
    }

    @Test func movedEntryKeepsItsTargets() throws {
        let old: UInt64 = 0x40_1000
        let new: UInt64 = 0x1040_2000
        // test %edi,%edi; jle +0x24; xor %eax,%eax; mov 0x2fe1(%rip),%ecx; …
        let entry: [UInt8] =
            [0x85, 0xff, 0x7e, 0x24, 0x31, 0xc0, 0x8b, 0x0d, 0xe1, 0x2f, 0x00, 0x00]
            + [UInt8](repeating: 0x90, count: 20)
        let moved = try X86Code.moveEntry(entry, from: old, to: new)
        #expect(moved.consumed == 6)
        let text = try DecoderTests.disassemble(moved.code, at: new)
        #expect(text.contains("jle    0x401028"), "the jle keeps its target:\n\(text)")
        #expect(text.contains("jmp    0x401006"), "the code continues after the moved bytes:\n\(text)")

        // A RIP-relative load moved: same absolute operand.
        let load: [UInt8] = [0x8b, 0x05, 0xe1, 0x2f, 0x00, 0x00, 0xc3] + [UInt8](repeating: 0xcc, count: 20)
        let movedLoad = try X86Code.moveEntry(load, from: old, to: new)
        let loadText = try DecoderTests.disassemble(movedLoad.code, at: new)
        #expect(loadText.contains("# 0x403fe7"), "the load reads the same address:\n\(loadText)")
        #expect(movedLoad.consumed == 6, "mov covers 6 bytes")

        // A four-byte function that returns: nothing to jump back to.
        let short: [UInt8] = [0x8d, 0x04, 0x3f, 0xc3] + [UInt8](repeating: 0xcc, count: 20)
        let movedShort = try X86Code.moveEntry(short, from: old, to: new)
        #expect(movedShort.code == Array(short[0..<4]))

        // A call keeps its callee.
        let call: [UInt8] = [0xe8, 0xfb, 0x0f, 0x00, 0x00] + [UInt8](repeating: 0x90, count: 20)
        let callText = try DecoderTests.disassemble(try X86Code.moveEntry(call, from: old, to: new).code, at: new)
        #expect(callText.contains("call   0x402000"), "\(callText)")
    }

    @Test func branchIntoTheEntryIsRefused() throws {
        // xor %eax,%eax; inc %eax; cmp $9,%eax; jne -7 (back to byte 2)
        let loop: [UInt8] = [0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8, 0x09, 0x75, 0xf9, 0xc3]
        #expect(try X86Code.branchesIntoEntry(loop).map(\.to) == [2])
        // A moved instruction that branches into the replaced bytes.
        let spin: [UInt8] = [0x85, 0xff, 0x74, 0xfe, 0x31, 0xc0, 0xc3] + [UInt8](repeating: 0x90, count: 16)
        #expect(throws: X86Code.MoveError.self) { try X86Code.moveEntry(spin, from: 0x1000, to: 0x2000) }
        #expect(try X86Code.branchesIntoEntry([0x85, 0xff, 0x7e, 0x24, 0x31, 0xc0, 0xc3]).isEmpty)
    }
}
