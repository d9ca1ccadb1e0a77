// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// What is wrong with an ELF file, and where: the file, the byte offset of
/// the offending structure when there is one, and a sentence.
///
/// Descriptions read like `amdgpu.ko: byte 0x1f00: section 12 (.rela.text)
/// has symbol index 9000 in relocation 3, but .symtab has 812 symbols`.
public struct ELFError: SutureError {
    public enum Code: String, Sendable {
        case notELF = "elf-not-elf"
        case unsupported = "elf-unsupported"
        case truncated = "elf-truncated"
        case malformed = "elf-malformed"
        case io = "elf-io"
        case write = "elf-write"
    }

    public var kind: Code
    public var path: String
    public var offset: UInt64?
    public var message: String

    public init(_ kind: Code, path: String, offset: UInt64? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.offset = offset
        self.message = message
    }

    public var code: String { kind.rawValue }

    public var description: String {
        if let offset {
            return "\(path): byte 0x\(String(offset, radix: 16)) (\(offset)): \(message)"
        }
        return "\(path): \(message)"
    }
}
