// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Glibc
import Platform

/// A module file read exactly once: its bytes, the image the kernel gets
/// (decompressed when the file is compressed) in a sealed memfd, and the
/// identity of the file that was read.
///
/// `ModuleFile` checks these bytes and `finit_module` is given the same
/// memfd, so swapping the file between the check and the load changes
/// nothing (a time-of-check to time-of-use race that, as root, would load
/// an unchecked module).
struct ModuleImage: Sendable {
    /// The file as read (compressed or not): what `install` stores.
    let fileBytes: [UInt8]
    /// The ELF image in a sealed memfd: what `finit_module` loads.
    let sealed: SealedMemory
    /// The ELF image, parsed from the same bytes as `sealed` holds.
    let elf: ELFFile
    /// The file's identity when it was read.
    let identity: FileIdentity
    /// The signature appended to the image, if any.
    let signature: ModuleSignature?

    /// Modules are a few MiB; this bounds what a hostile file can make
    /// Suture read.
    static let limit = 512 << 20

    static func read(_ path: String) throws(LivepatchError) -> ModuleImage {
        let file: (bytes: [UInt8], status: stat)
        do {
            file = try RegularFile.read(path, limit: limit)
        } catch {
            if error.kind == .invalidData {
                throw LivepatchError(.notModule, "\(path) is not a kernel module: \(error.description)")
            }
            throw LivepatchError(.missingFile, errno: error.errno, "cannot read \(path)")
        }
        let image: [UInt8]
        do {
            image = try Decompression.decompress(bytes: file.bytes, path: path) ?? file.bytes
        } catch {
            throw LivepatchError(.missingFile, "\(error.description)")
        }
        let elf: ELFFile
        do {
            elf = try ELFFile.parse(image, path: path)
        } catch {
            throw LivepatchError(.notModule, "\(path) is not a kernel module: \(error.description)")
        }
        let sealed: SealedMemory
        do {
            sealed = try SealedMemory(name: ModuleName.normalized(path), bytes: image)
        } catch {
            throw LivepatchError(
                .loadFailed, errno: error.errno, "cannot hold \(path) in memory for loading: \(error.context)")
        }
        return ModuleImage(
            fileBytes: file.bytes, sealed: sealed, elf: elf, identity: FileIdentity(file.status),
            signature: ModuleSignature.read(image))
    }
}
