// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Compressed kernel modules (`.ko.xz`, `.ko.zst`, `.ko.gz`), recognised by
/// magic and decompressed with the system's own tools.
enum Decompression {
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

    static func decompress(path: String, format: Format) throws(ELFError) -> [UInt8] {
        let result: CommandResult
        do {
            result = try Command.run(format.command + [path])
        } catch {
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
