// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// What `/proc` says about a process, and the checks made before touching it.
public struct TargetProcess: Sendable {
    public let pid: Int32
    /// `Name:` of `/proc/PID/status` (the main thread's comm).
    public let name: String
    /// The real user id.
    public let uid: UInt32

    /// Reads `/proc/PID/status`; refuses a process that does not exist or
    /// has exited (a zombie).
    public init(pid: Int32) throws(ProcessError) {
        guard pid > 0 else { throw ProcessError(.noSuchProcess, "process \(pid): not a process id") }
        guard let status = FileSystem.readTextIfPresent("/proc/\(pid)/status") else {
            throw ProcessError(.noSuchProcess, "process \(pid) does not exist")
        }
        let fields = TargetProcess.fields(status)
        // /proc/TID/status exists for threads too; a patch names the process.
        if let tgid = fields["Tgid"], tgid != String(pid) {
            throw ProcessError(.noSuchProcess, "\(pid) is a thread of process \(tgid), not a process")
        }
        if let state = fields["State"], state.hasPrefix("Z") || state.hasPrefix("X") {
            throw ProcessError(.noSuchProcess, "process \(pid) has exited (state \(state))")
        }
        self.pid = pid
        name = fields["Name"] ?? "?"
        uid = fields["Uid"].flatMap { $0.split(separator: "\t").first.flatMap { UInt32($0) } } ?? UInt32.max
    }

    /// Refuses another user's process unless we are root.
    public func checkOwner() throws(ProcessError) {
        let me = Kernel.effectiveUserID()
        if me != 0 && me != uid {
            throw ProcessError(
                .permission,
                "process \(pid) (\(name)) belongs to user \(uid); only root may patch another user's process")
        }
    }

    /// `Key: value` pairs of a `/proc/PID/status` text.
    static func fields(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            result[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingWhitespace()
        }
        return result
    }

    /// The thread ids in `/proc/PID/task`, sorted.
    public static func threads(of pid: Int32) -> [Int32] {
        ((try? FileSystem.list("/proc/\(pid)/task")) ?? []).compactMap { Int32($0) }.sorted()
    }

    /// A thread's name (`comm`).
    public static func threadName(pid: Int32, tid: Int32) -> String {
        (FileSystem.readTextIfPresent("/proc/\(pid)/task/\(tid)/comm") ?? "?").trimmingWhitespace()
    }

    /// The one-letter scheduler state of a process or thread (`R`, `S`, `D`,
    /// `T` stopped, `t` tracing stop, `Z` …), or nil when it is gone.
    public static func state(pid: Int32, tid: Int32? = nil) -> Character? {
        let path = tid.map { "/proc/\(pid)/task/\($0)/status" } ?? "/proc/\(pid)/status"
        guard let text = FileSystem.readTextIfPresent(path), let state = fields(text)["State"] else { return nil }
        return state.first
    }

    /// Whether the process is alive (exists and is not a zombie).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let s = state(pid: pid) else { return false }
        return s != "Z" && s != "X"
    }
}
