// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Compressed kernel modules (`.ko.xz`, `.ko.zst`, `.ko.gz`), recognised by
/// magic and decompressed with the system's own tools.
public enum Decompression {
    enum Format: String {
        case xz, zstd, gzip

        var command: [String] {
            switch self {
            case .xz: return ["xz", "-dc"]
            case .zstd: return ["zstd", "-dcq"]
            case .gzip: return ["gzip", "-dc"]
            }
        }
    }

    static func format(of bytes: UnsafeRawBufferPointer) -> Format? {
        if bytes.count >= 6 && bytes[0] == 0xfd && bytes[1] == 0x37 && bytes[2] == 0x7a
            && bytes[3] == 0x58 && bytes[4] == 0x5a && bytes[5] == 0x00
        {
            return .xz
        }
        if bytes.count >= 4 && bytes[0] == 0x28 && bytes[1] == 0xb5 && bytes[2] == 0x2f && bytes[3] == 0xfd {
            return .zstd
        }
        if bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b { return .gzip }
        return nil
    }

    /// The most a compressed file may expand to: a module is a few MiB, and
    /// a small hostile file must not be able to fill memory.
    public static let outputLimit = 1 << 30

    /// Decompresses bytes already read, fed on standard input: the file is
    /// not opened again, and no path reaches the tool's command line.
    public static func decompress(bytes: [UInt8], path: String) throws(ELFError) -> [UInt8]? {
        guard let format = bytes.withUnsafeBytes({ Decompression.format(of: $0) }) else { return nil }
        return try run(format.command, input: bytes, path: path, format: format)
    }

    private static func run(_ arguments: [String], input: [UInt8]?, path: String, format: Format) throws(ELFError)
        -> [UInt8]
    {
        let result: CommandResult
        do {
            result = try Command.run(arguments, input: input, outputLimit: outputLimit)
        } catch {
            if error.kind == .invalidData {
                throw ELFError(
                    .io, path: path,
                    "\(format.rawValue) decompression stopped: the output exceeds \(outputLimit >> 20) MiB")
            }
            throw ELFError(.io, path: path, "cannot run \(format.command[0]) to decompress: \(error.description)")
        }
        guard result.termination.succeeded else {
            throw ELFError(
                .io, path: path, "\(format.rawValue) decompression failed: \(Command.tail(result.stderrText, lines: 3))"
            )
        }
        return result.stdout
    }
}
