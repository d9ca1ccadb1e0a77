// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// The running kernel as the manager acts on it: where its interfaces are,
/// how modules are loaded and removed, who is calling, and the timings.
/// `live()` is the real thing; tests build one over a fake tree.
public struct LivepatchSystem: Sendable {
    public var tree: KernelTree
    public var calls: any KernelCalls
    /// The caller's effective user id; only root may change live patches.
    public var effectiveUserID: UInt32
    /// Seconds between reads of a patch's `transition` while waiting.
    public var pollInterval: Double = 0.02
    /// Seconds between progress lines, each with a scan of /proc.
    public var progressInterval: Double = 1
    /// Seconds to wait for another suture process to release the lock.
    public var lockTimeout: Double = 30
    /// Seconds to wait for a reversal to finish, and for a module's
    /// references to drop before it is removed.
    public var settleTimeout: Double = 30

    public init(tree: KernelTree, calls: any KernelCalls, effectiveUserID: UInt32) {
        self.tree = tree
        self.calls = calls
        self.effectiveUserID = effectiveUserID
    }

    public static func live() -> LivepatchSystem {
        LivepatchSystem(tree: .live, calls: LiveKernelCalls(), effectiveUserID: Kernel.effectiveUserID())
    }
}

/// The lock that serialises suture processes acting on the kernel: an
/// `flock` on `/run/suture/kernel.lock`, which the kernel drops when its
/// holder dies. The holder notes its pid and action beside it, so a waiting
/// process can say whom it waits for.
///
/// The patch store has a lock of the same kind (`PatchStore.lock`). A
/// process that needs both takes the store's first, never the other way.
struct KernelLock {
    let lock: FileLock

    init(_ system: LivepatchSystem, action: String, say: @escaping (String) -> Void) throws(LivepatchError) {
        try self.init(
            path: system.tree.lock, activity: "changing live patches", system: system, action: action, say: say)
    }

    /// A lock at `path`; `activity` says what its holder does, for the
    /// messages of those who wait.
    init(
        path: String, activity: String, system: LivepatchSystem, action: String,
        say: @escaping (String) -> Void
    ) throws(LivepatchError) {
        let ownerPath = path + ".owner"
        do {
            lock = try FileLock(path: path, timeout: system.lockTimeout) {
                let owner = KernelFiles.read(ownerPath).map { " (\($0))" } ?? ""
                say("another suture process\(owner) is \(activity); waiting up to \(Int(system.lockTimeout)) s")
            }
        } catch {
            if error.kind == .lockTimeout {
                let owner = KernelFiles.read(ownerPath).map { " (\($0))" } ?? ""
                throw LivepatchError(
                    .locked,
                    "another suture process\(owner) held \(path) for \(Int(system.lockTimeout)) s; gave up")
            }
            throw LivepatchError.io(error, "take the lock")
        }
        try? FileSystem.write(ownerPath, "pid \(getpid()): \(action)\n")
    }

    func release() { lock.unlock() }
}

/// New kernel log messages since the cursor was made, from `/dev/kmsg`.
/// Used to quote the kernel's reason when it refuses a module.
final class KernelLogCursor {
    private var fd: Int32

    /// Opens the log at its end; without permission the cursor stays empty.
    init(path: String) {
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 { lseek(fd, 0, SEEK_END) }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The message texts logged since, oldest first. Each `read` of
    /// `/dev/kmsg` returns one record, `prio,seq,time,flags;text`.
    func messages() -> [String] {
        guard fd >= 0 else { return [] }
        var result: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EPIPE { continue }  // records overwritten: skip ahead
            if n <= 0 { break }
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            for line in text.split(separator: "\n") where !line.hasPrefix(" ") {
                if let semicolon = line.firstIndex(of: ";") {
                    result.append(String(line[line.index(after: semicolon)...]))
                } else {
                    result.append(String(line))
                }
            }
        }
        return result
    }
}
