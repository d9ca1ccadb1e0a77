// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Synchronization

/// Process-wide cleanup actions that must run on normal exit and on
/// SIGINT, SIGTERM and SIGHUP: temporary directories, child processes.
///
/// Signals are handled on a dedicated thread through `sigwait`, so the
/// actions are ordinary Swift code rather than signal-handler code. After the
/// actions run, the signal is re-raised with its default disposition so the
/// exit status says how the process ended. SIGKILL cannot be caught; for that
/// case children get a parent-death signal and files are unlinked early.
public enum Cleanup {
    private static let state = Mutex<(next: Int, actions: [(Int, @Sendable () -> Void)])>((0, []))
    private static let installed = Mutex(false)

    /// Registers an action; returns a token for `unregister`.
    @discardableResult
    public static func register(_ action: @escaping @Sendable () -> Void) -> Int {
        state.withLock { s in
            s.next += 1
            s.actions.append((s.next, action))
            return s.next
        }
    }

    public static func unregister(_ token: Int) {
        state.withLock { s in s.actions.removeAll { $0.0 == token } }
    }

    /// Runs and clears every registered action, newest first.
    public static func runAll() {
        let actions = state.withLock { s in
            let a = s.actions
            s.actions = []
            return a
        }
        for (_, action) in actions.reversed() { action() }
    }

    /// Blocks SIGINT, SIGTERM and SIGHUP in this and every later thread and
    /// starts the thread that waits for them. Call once, early in `main`.
    public static func installSignalHandling() {
        let already = installed.withLock { v in
            defer { v = true }
            return v
        }
        if already { return }
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var thread = pthread_t()
        pthread_create(
            &thread, nil,
            { _ in
                var set = sigset_t()
                sigemptyset(&set)
                for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
                var received: Int32 = 0
                while sigwait(&set, &received) != 0 {}
                Cleanup.runAll()
                signal(received, SIG_DFL)
                var one = sigset_t()
                sigemptyset(&one)
                sigaddset(&one, received)
                pthread_sigmask(SIG_UNBLOCK, &one, nil)
                kill(getpid(), received)
                _exit(128 + received)
            }, nil)
        pthread_detach(thread)
    }
}
