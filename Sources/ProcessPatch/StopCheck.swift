// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The stop-and-check consistency model (Ksplice, kpatch): stop every
/// thread; if none is inside the code being replaced, switch while they are
/// all stopped; else resume them, wait and try again, until the deadline.
/// The per-thread and hybrid models are other ways to drive the same
/// `AreaSwitch`.
struct StopCheck {
    /// How the attempts went.
    struct Outcome {
        var switched = false
        var attempts = 0
        /// Seconds each attempt kept the world stopped.
        var pauses: [Double] = []
        /// The threads in the way at the last attempt that failed.
        var blockers: [Activeness.Blocker] = []
        /// The switching attempt in parts: stop, check, switch, resume (seconds).
        var breakdown: (stop: Double, check: Double, commit: Double, resume: Double) = (0, 0, 0, 0)
    }

    let tracer: Tracer
    let target: Target
    let activeness: Activeness
    let deadline: Double

    /// Runs attempts until `switchOver` has run in one of them (with every
    /// thread stopped and none in the way) or the deadline passes. Checks for
    /// SIGINT/SIGTERM before each attempt, never inside one.
    func run(_ switchOver: () throws(ProcessError) -> Void) throws(ProcessError) -> Outcome {
        var outcome = Outcome()
        var wait = 0.01
        while true {
            try Interruption.check()
            outcome.attempts += 1
            // The tracer runs at real-time priority while it sends the
            // interrupts and from the moment all threads are stopped until
            // they are resumed, so that no woken thread preempts it between
            // two requests; while waiting for the stops it gives the CPUs to
            // the threads that must run to stop. (Without the privilege for
            // SCHED_FIFO it is only slower.)
            let boosted = Kernel.setRealTime(true)
            defer { if boosted { Kernel.setRealTime(false) } }
            try tracer.interruptAll()
            if boosted { Kernel.setRealTime(false) }
            try tracer.waitForStops()
            if boosted { Kernel.setRealTime(true) }
            let stopped = Clock.monotonicNanoseconds()
            let blockers = try activeness.check(tracer: tracer, memory: target.memory, map: &target.map)
            let checked = Clock.monotonicNanoseconds()
            if blockers.isEmpty {
                try switchOver()
                outcome.switched = true
            } else {
                outcome.blockers = blockers
            }
            let written = Clock.monotonicNanoseconds()
            try tracer.resumeAll()
            let resumed = Clock.monotonicNanoseconds()
            outcome.pauses.append(Double(resumed - tracer.stopStarted) / 1e9)
            if outcome.switched {
                outcome.breakdown = (
                    Double(stopped - tracer.stopStarted) / 1e9, Double(checked - stopped) / 1e9,
                    Double(written - checked) / 1e9, Double(resumed - written) / 1e9
                )
                return outcome
            }
            if Clock.now() + wait > deadline { return outcome }
            try tracer.run(for: wait)
            wait = min(wait * 1.5, 0.25)
        }
    }

    /// The error for attempts that never found the threads out of the way.
    static func busy(pid: Int32, _ outcome: Outcome, timeout: Double, result: String) -> ProcessError {
        let names = Set(outcome.blockers.map(\.function)).sorted()
        return ProcessError(
            .busy,
            "process \(pid): gave up after \(outcome.attempts) attempts in \(String(format1: timeout)) s; threads stayed inside \(names.joined(separator: ", ")) (\(outcome.blockers.prefix(8).map(\.description).joined(separator: "; "))). \(result)"
        )
    }
}

extension String {
    /// A number with one decimal, e.g. `2.5`.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
