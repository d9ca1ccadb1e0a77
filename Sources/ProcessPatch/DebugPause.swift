// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Named points where `SUTURE_DEBUG_PAUSE=name[,name…]` makes Suture stop
/// and wait forever, so a test can kill it there deterministically. Not a
/// user feature; it is read once from the environment.
public enum DebugPause {
    /// Every point, in the order an apply passes them.
    public static let points = [
        "attached",  // all threads seized and stopped, nothing written
        "inject-registers",  // injected code written, registers not yet redirected
        "injecting",  // a thread's registers point at the injected code
        "unwind-call",  // a thread runs an injected libgcc call (unwind tables, C++ only)
        "loaded",  // patch area written and described, world running
        "commit-started",  // world stopped, first entry jump written
        "committed",  // dispatch flag flipped to the new code
        "direct",  // first entry turned into a direct jump
        "transition-started",  // per-thread: threads marked, entries on the dispatchers, mode set, world stopped
        "transition-running",  // per-thread: the same, world running, before any thread moved
        "revert-started",  // revert: first entry back on the dispatcher
        "reverted",  // revert: dispatch flag back to the old code
    ]

    static let enabled: Set<String> = {
        guard let value = FileSystem.environment("SUTURE_DEBUG_PAUSE") else { return [] }
        return Set(value.split(separator: ",").map { String($0).trimmingWhitespace() })
    }()

    /// Waits forever if `name` is enabled, or until SIGINT/SIGTERM/SIGHUP
    /// asks Suture to stop (then throws, like any interruption).
    static func point(_ name: String) throws(ProcessError) {
        guard enabled.contains(name) else { return }
        Progress.warn("suture: debug pause at \(name)")
        while true {
            try Interruption.check()
            Clock.sleep(seconds: 0.01)
        }
    }
}
