// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A host file or directory to place in the guest's initramfs.
public struct GuestFile: Sendable, Equatable {
    /// The host path (a file, or a directory added whole).
    public var hostPath: String
    /// Where it appears in the guest; absolute.
    public var guestPath: String

    /// Without `guestPath`, the file keeps its absolute host path.
    public init(hostPath: String, guestPath: String? = nil) {
        self.hostPath = Path.absolute(hostPath)
        self.guestPath = guestPath ?? self.hostPath
    }

    /// Parses `FILE[:GUEST_PATH]`. The guest path is what follows the last
    /// `:` when that text starts with `/`, so host paths with colons work.
    public static func parse(_ spec: String) throws(VMError) -> GuestFile {
        guard !spec.isEmpty else { throw VMError(.usage, "--add needs FILE[:GUEST_PATH]") }
        if let colon = spec.lastIndex(of: ":") {
            let guest = String(spec[spec.index(after: colon)...])
            let host = String(spec[..<colon])
            if guest.hasPrefix("/") && !host.isEmpty {
                return GuestFile(hostPath: host, guestPath: guest)
            }
            if FileSystem.kind(spec) == .missing {
                throw VMError(.usage, "--add \(spec): the guest path after ':' must be absolute")
            }
        }
        return GuestFile(hostPath: spec)
    }

    /// The mount points the guest's /init mounts over the initramfs; files
    /// under them would be hidden, so `/tmp` is staged and the others
    /// are refused.
    static let stagedRoot = "/tmp"
    static let refusedRoots = ["/proc", "/sys", "/dev"]

    static func isUnder(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root + "/")
    }
}
