// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// Kbuild's `tools/` sub-builds (objtool, resolve_btfids) record absolute
/// paths in their `.cmd` and `.d` files and rebuild when the object folder
/// moves. Rewriting the folder's old path to its new one lets a moved or
/// copied tree reuse them. Correctness never depends on it: a missed path
/// only costs a rebuild of those tools.
enum ToolsPaths {
    static func rewrite(in buildDirectory: String, from old: String, to new: String) throws(KernelError) {
        guard old != new else { return }
        let tools = Path.join(buildDirectory, "tools")
        guard FileSystem.isDirectory(tools) else { return }
        let oldBytes = Array(old.utf8)
        let newBytes = Array(new.utf8)
        var failure: KernelError?
        func visit(_ dir: String) {
            for name in (try? FileSystem.list(dir)) ?? [] where failure == nil {
                let path = Path.join(dir, name)
                switch FileSystem.kind(path) {
                case .directory:
                    visit(path)
                case .file where name.hasSuffix(".cmd") || name.hasSuffix(".d"):
                    guard let bytes = try? FileSystem.read(path) else { continue }
                    let replaced = replace(bytes, oldBytes, newBytes)
                    if replaced != bytes {
                        do {
                            let mode = (try? FileSystem.status(path)).map { $0.st_mode & 0o7777 } ?? 0o644
                            try FileSystem.setMode(path, mode | 0o200)
                            try FileSystem.write(path, replaced, mode: mode)
                            try FileSystem.setMode(path, mode)
                        } catch {
                            failure = KernelError(.prepareFailed, "cannot rewrite \(path): \(error.description)")
                        }
                    }
                default:
                    continue
                }
            }
        }
        visit(tools)
        if let failure { throw failure }
    }

    static func replace(_ bytes: [UInt8], _ old: [UInt8], _ new: [UInt8]) -> [UInt8] {
        guard !old.isEmpty, bytes.count >= old.count else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        let first = old[0]
        while i < bytes.count {
            if bytes[i] == first && i + old.count <= bytes.count && bytes[i..<i + old.count].elementsEqual(old) {
                out.append(contentsOf: new)
                i += old.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
