// SPDX-License-Identifier: GPL-2.0-only
import Platform
import Synchronization

/// SIGINT, SIGTERM or SIGHUP during an apply or revert: the signal thread
/// (see `Cleanup`) asks the tracing thread to stop at its next safe point,
/// where it finishes a commit in progress or undoes a prepared patch, and
/// waits for that before letting the process exit. ptrace requests can only
/// come from the tracing thread, so the signal thread itself touches nothing.
enum Interruption {
    private static let requested = Atomic<Bool>(false)
    private static let settled = Atomic<Bool>(false)

    static var isRequested: Bool { requested.load(ordering: .acquiring) }

    /// Registers the cleanup action for one operation; call `finish` after.
    static func begin() -> Int {
        settled.store(false, ordering: .releasing)
        return Cleanup.register {
            requested.store(true, ordering: .releasing)
            let end = Clock.now() + 30
            while !settled.load(ordering: .acquiring) && Clock.now() < end { Clock.sleep(seconds: 0.005) }
        }
    }

    static func finish(_ token: Int) {
        settled.store(true, ordering: .releasing)
        Cleanup.unregister(token)
    }

    static func check() throws(ProcessError) {
        if isRequested { throw ProcessError(.interrupted, "interrupted by a signal") }
    }
}
