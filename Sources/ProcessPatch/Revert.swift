// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// `suture process revert`: removes the newest patch, or a named one, under
/// the stop-and-check model in reverse: no thread may be in the patch's code
/// (new functions, dispatchers, anything in its area). The commit runs in the
/// reverse order of an apply, each prefix again leaving the program whole:
/// direct jumps back to dispatchers (still new code), the flag to 0 (all old
/// at once), the original entry bytes back, and the area unmapped.
public struct Revert {
    public struct Options: Sendable {
        public var pid: Int32
        /// A patch file naming the patch to remove; nil for the newest.
        public var patch: String?
        public var timeout: Double
        /// The consistency model; nil for the one the patch was applied with
        /// (a patch in a per-thread transition is always reversed per thread).
        public var model: PatchArea.Model?

        public init(pid: Int32, patch: String? = nil, timeout: Double = 10, model: PatchArea.Model? = nil) {
            self.pid = pid
            self.patch = patch
            self.timeout = timeout
            self.model = model
        }
    }

    public struct Report: Sendable {
        public let pid: Int32
        public let name: String
        public let sequence: Int
        public let attempts: Int
        public let pauses: [Double]
        public let seconds: Double

        public var json: JSON {
            .object([
                ("pid", .int(Int64(pid))), ("patch", .string(name)), ("sequence", .int(Int64(sequence))),
                ("state", .string("reverted")), ("attempts", .int(Int64(attempts))),
                ("pausesMicroseconds", .array(pauses.map { .int(Int64(($0 * 1e6).rounded())) })),
                ("revertSeconds", .double((seconds * 1000).rounded() / 1000)),
            ])
        }
    }

    let options: Options

    public init(_ options: Options) {
        self.options = options
    }

    public func run() throws(ProcessError) -> Report {
        let token = Interruption.begin()
        defer { Interruption.finish(token) }
        let started = Clock.now()
        let target = try Target(pid: options.pid, writable: true)
        let scan = target.scan

        // Which patch.
        if scan.areas.isEmpty && scan.incomplete.isEmpty {
            throw ProcessError(.nothing, "process \(options.pid) (\(target.process.name)) has no suture patch")
        }
        let area: PatchArea
        if let path = options.patch {
            let digest: String
            do { digest = try SHA256.hex(file: path) } catch { throw error.process(.badPatch, "read \(path)") }
            guard let found = scan.areas.first(where: { $0.digest == digest }) else {
                throw ProcessError(.nothing, "\(path) is not applied to process \(options.pid)")
            }
            area = found
        } else {
            let newestComplete = scan.areas.last
            let newestIncomplete = scan.incomplete.max { Revert.sequence(of: $0.name) < Revert.sequence(of: $1.name) }
            if let i = newestIncomplete, Revert.sequence(of: i.name) > (newestComplete?.sequence ?? 0) {
                // A leftover of an interrupted apply: nothing refers to it.
                let tracer = try Tracer(pid: options.pid)
                do throws(ProcessError) {
                    _ = try tracer.stopOne()
                    try AreaSwitch.unmap(start: i.start, size: i.size, tracer: tracer, target: target)
                    try tracer.resumeAll()
                    try tracer.detach()
                } catch {
                    tracer.detachQuietly()
                    throw error
                }
                return Report(
                    pid: options.pid, name: i.name, sequence: Revert.sequence(of: i.name), attempts: 1, pauses: [],
                    seconds: Clock.now() - started)
            }
            area = newestComplete!
        }
        for newer in scan.areas where newer.sequence > area.sequence {
            let shared = area.functions.filter { f in newer.functions.contains { $0.address == f.address } }
            if let f = shared.first {
                throw ProcessError(
                    .state, "patch #\(newer.sequence) (\(newer.name)) also replaces \(f.name); revert it first")
            }
        }
        let status = try Status.read(target)
        if let p = status.patches.first(where: { $0.area.sequence == area.sequence }),
            let odd = p.functions.first(where: { $0.state == .unknown })
        {
            throw ProcessError(
                .state, "the entry of \(odd.function.name) holds bytes suture did not write; refusing to overwrite them"
            )
        }

        var model = options.model ?? area.model
        if area.inTransition && model == .stopCheck { model = area.model == .stopCheck ? .perThread : area.model }
        if model != .stopCheck {
            return try perThread(area, target: target, model: model, started: started)
        }

        // Code that must not be running: all of the patch's area.
        let activeness = Transition.patchCode(area)

        let tracer = try Tracer(pid: options.pid)
        var switching = false
        do throws(ProcessError) {
            let model = StopCheck(
                tracer: tracer, target: target, activeness: activeness, deadline: started + options.timeout)
            let outcome = try model.run { () throws(ProcessError) in
                switching = true
                try AreaSwitch.off(area, memory: target.memory)
            }
            guard outcome.switched else {
                try tracer.detach()
                throw StopCheck.busy(
                    pid: options.pid, outcome, timeout: options.timeout,
                    result: "Patch #\(area.sequence) stays applied.")
            }
            // Nothing refers to the area any more: unmap it through one thread.
            _ = try tracer.stopOne()
            try AreaSwitch.unmap(
                start: area.start, size: area.size, unwind: area.unwind, tracer: tracer, target: target)
            try tracer.resumeAll()
            try tracer.detach()
            return Report(
                pid: options.pid, name: area.name, sequence: area.sequence, attempts: outcome.attempts,
                pauses: outcome.pauses, seconds: Clock.now() - started)
        } catch {
            // Leave the process whole: finish a switch made, undo one not made.
            if switching, let applied = try? AreaSwitch.settle(area, tracer: tracer, target: target) {
                tracer.detachQuietly()
                throw ProcessError(
                    error.kind,
                    "\(error.message) (patch #\(area.sequence) is \(applied ? "still applied" : "reverted"))")
            }
            tracer.detachQuietly()
            throw error
        }
    }

    /// Under the per-thread or hybrid model: each thread moves back to the
    /// old code once seen outside the patch's code; then the area goes. On
    /// timeout the threads go forward to the new code again and the patch
    /// stays applied.
    func perThread(_ area: PatchArea, target: Target, model: PatchArea.Model, started: Double) throws(ProcessError)
        -> Report
    {
        var area = area
        let tracer = try Tracer(pid: options.pid)
        do throws(ProcessError) {
            let back = Transition(
                tracer: tracer, target: target, direction: .toOld, model: model,
                leaving: Transition.patchCode(area), deadline: started + options.timeout)
            let outcome = try back.run(&area)
            guard outcome.completed else {
                let why =
                    "process \(options.pid): gave up after \(outcome.rounds) rounds in \(String(format1: options.timeout)) s; threads stayed inside \(Set(outcome.held.map(\.function)).sorted().joined(separator: ", ")) (\(Transition.describe(outcome.held)))."
                var old: [Activeness.Range] = []
                for f in area.functions {
                    old.append(Activeness.Range(range: f.address..<f.address + max(f.size, 1), function: f.name))
                    old.append(
                        Activeness.Range(
                            range: f.dispatcher..<f.dispatcher + f.dispatcherSize, function: "\(f.name) (dispatcher)"))
                }
                let forward = Transition(
                    tracer: tracer, target: target, direction: .toNew, model: model,
                    leaving: Activeness(old), deadline: Clock.now() + options.timeout)
                let again = try forward.run(&area)
                try tracer.detach()
                throw ProcessError(
                    .busy,
                    again.completed
                        ? "\(why) Every thread runs the new code again: patch #\(area.sequence) stays applied."
                        : "\(why) Going forward again timed out too: patch #\(area.sequence) is left in a transition (see `suture process status`)."
                )
            }
            let removed = try Transition.remove(
                area, tracer: tracer, target: target, deadline: Clock.now() + options.timeout)
            try tracer.detach()
            guard removed.switched else {
                throw StopCheck.busy(
                    pid: options.pid, removed, timeout: options.timeout,
                    result: "Every thread runs the old code; the patch's memory stays mapped until `revert` runs again."
                )
            }
            return Report(
                pid: options.pid, name: area.name, sequence: area.sequence, attempts: outcome.rounds,
                pauses: outcome.pauses + removed.pauses, seconds: Clock.now() - started)
        } catch {
            if !tracer.threads.isEmpty { _ = try? AreaSwitch.settle(area, tracer: tracer, target: target) }
            tracer.detachQuietly()
            if error.kind == .busy { throw error }
            throw ProcessError(
                error.kind,
                "\(error.message) (patch #\(area.sequence) may be left in a per-thread transition: see `suture process status`)"
            )
        }
    }

    static func sequence(of mappingName: String) -> Int {
        Int(mappingName.split(separator: ":").dropFirst().first ?? "") ?? 0
    }
}
