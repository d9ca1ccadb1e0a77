// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import TestSupport

/// Lets only one guest run at a time in the whole test process, and
/// across test processes: two TCG guests on two cores slow each other
/// down until boot bounds fail.
///
/// It is an `flock` on a file in the temporary directory. Every holder
/// opens the file itself, so the lock also excludes other threads of this
/// process. Waiting polls with `Task.sleep`, never blocking a thread of the
/// cooperative pool that the holder's tests may need.
enum GuestLock {
    static let path = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/suture-integration-guest.lock"

    static func withLock<T>(_ body: () async throws -> T) async throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw TestError("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }  // releases the lock
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return try await body()
    }
}
