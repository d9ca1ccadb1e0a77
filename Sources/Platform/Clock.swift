// SPDX-License-Identifier: GPL-2.0-only
import Glibc

/// Monotonic and wall-clock time without Foundation.
public enum Clock {
    /// Monotonic nanoseconds since an arbitrary point (`CLOCK_MONOTONIC`).
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Seconds since an arbitrary point, as a Double.
    public static func now() -> Double {
        Double(monotonicNanoseconds()) / 1e9
    }

    /// Seconds since the Unix epoch (`CLOCK_REALTIME`).
    public static func unixTime() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int(ts.tv_sec)
    }

    /// The current UTC time as ISO 8601, e.g. `2026-11-29T11:27:05Z`.
    public static func isoTimestamp(_ seconds: Int = unixTime()) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    /// Sleeps for the given number of seconds.
    public static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR {
            request = remaining
        }
    }
}

/// Measures named phases, for the timing reports of slow commands.
public struct PhaseTimer: Sendable {
    public private(set) var phases: [(name: String, seconds: Double)] = []
    private var started = Clock.now()

    public init() {}

    /// Ends the current phase under `name` and starts the next one.
    public mutating func lap(_ name: String) {
        let now = Clock.now()
        phases.append((name, now - started))
        started = now
    }

    public var total: Double { phases.reduce(0) { $0 + $1.seconds } }
}
