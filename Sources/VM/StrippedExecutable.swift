// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// A copy of an executable without symbols or debug information, for the
/// guest: the release `suture` is 27 MB and 15 MB stripped, and the guest
/// kernel unpacks every byte of the initramfs in emulated code (about
/// 0.3 s of a TCG boot for the difference).
///
/// The copy is cached by the original's path, size and modification time;
/// without a writable cache or `strip`, the original is used as it is.
enum StrippedExecutable {
    static func prepare(_ executable: String, cacheDirectory: String?) -> String {
        guard let cacheDirectory, let strip = Command.which("strip"),
            let st = try? FileSystem.status(executable)
        else { return executable }
        let directory = Path.join(cacheDirectory, "binaries")
        let key = SHA256.hex(Array(executable.utf8)).prefix(12)
        let prefix = "\(Path.base(of: executable))-\(key)-"
        let name = "\(prefix)\(st.st_size)-\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        let cached = Path.join(directory, name)
        if FileSystem.exists(cached) { return cached }
        let temporary = "\(cached).tmp.\(getpid())"
        guard (try? FileSystem.makeDirectories(directory)) != nil,
            let result = try? Command.run([strip, "-o", temporary, executable]),
            result.termination.succeeded,
            (try? FileSystem.rename(temporary, cached)) != nil
        else {
            try? FileSystem.removeFile(temporary)
            return executable
        }
        // Copies of earlier builds of the same executable are stale now.
        for old in (try? FileSystem.list(directory)) ?? [] where old.hasPrefix(prefix) && old != name {
            try? FileSystem.removeFile(Path.join(directory, old))
        }
        return cached
    }
}
