// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// `suture process apply`: loads a patch into a running process and switches
/// its functions over under the stop-and-check consistency model.
///
/// Everything is prepared while the program runs: the patch area is placed,
/// linked, mapped (one thread is stopped and borrowed for the `mmap`, the
/// others run on) and written, with one dispatcher per replaced function
/// that runs the old code while the area's dispatch flag is 0 and the new
/// code once it is 1. Then, in attempts of one short stop each
/// (`StopCheck`, `AreaSwitch`):
///
/// 1. stop every thread; if any is inside an old function (instruction
///    pointer or a stack word), resume them all, wait and try again;
/// 2. else commit, in an order where every prefix leaves the program whole:
///    each old entry gets `jmp dispatcher` (the program still runs old code),
///    then the flag byte turns to 1 (all functions switch at this single
///    byte write), then each entry becomes `jmp new` directly (no change in
///    behaviour, one branch less per call);
/// 3. resume, detach.
///
/// If Suture dies at any point, the program keeps running and is either
/// fully old (flag 0) or fully new (flag 1); `status` and `revert` from a new
/// Suture process read the state from the area. On timeout, the area is
/// removed again and the program is as before.
public struct Apply {
    public struct Options: Sendable {
        public var pid: Int32
        public var patch: String
        public var model: PatchArea.Model
        public var timeout: Double

        public init(pid: Int32, patch: String, model: PatchArea.Model = .stopCheck, timeout: Double = 10) {
            self.pid = pid
            self.patch = patch
            self.model = model
            self.timeout = timeout
        }
    }

    public struct Report: Sendable {
        public let pid: Int32
        public let area: PatchArea
        public let attempts: Int
        /// Seconds each attempt kept the world stopped.
        public let pauses: [Double]
        /// Seconds from start to detach.
        public let seconds: Double
        /// Seconds the one thread borrowed to map the patch area was stopped
        /// (the other threads ran on).
        public let preparationPause: Double
        /// The committing attempt's pause in parts: stopping every thread,
        /// checking them, writing the commit, resuming them (seconds).
        public let commitBreakdown: (stop: Double, check: Double, commit: Double, resume: Double)
        /// Under the per-thread and hybrid models: how the threads moved.
        var transition: Transition.Outcome? = nil

        /// Under the per-thread and hybrid models, e.g. "2 thread(s) moved
        /// (1 at once) in 26 rounds"; nil under stop-check.
        public var transitionSummary: String? {
            transition.map {
                "\($0.movedAtOnce + $0.movedLater) thread(s) moved (\($0.movedAtOnce) at once) in \($0.rounds) round(s)"
            }
        }

        public var json: JSON {
            let sorted = pauses.sorted()
            let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            return .object([
                ("pid", .int(Int64(pid))),
                ("patch", .string(area.name)),
                ("sequence", .int(Int64(area.sequence))),
                ("model", .string(area.model.name)),
                ("state", .string("applied")),
                ("attempts", .int(Int64(attempts))),
                ("pausesMicroseconds", .array(pauses.map { .int(Int64(($0 * 1e6).rounded())) })),
                ("medianPauseMicroseconds", .int(Int64((median * 1e6).rounded()))),
                ("preparationPauseMicroseconds", .int(Int64((preparationPause * 1e6).rounded()))),
                (
                    "commitPauseMicroseconds",
                    .object([
                        ("stop", .int(Int64((commitBreakdown.stop * 1e6).rounded()))),
                        ("check", .int(Int64((commitBreakdown.check * 1e6).rounded()))),
                        ("commit", .int(Int64((commitBreakdown.commit * 1e6).rounded()))),
                        ("resume", .int(Int64((commitBreakdown.resume * 1e6).rounded()))),
                    ])
                ),
                ("applySeconds", .double((seconds * 1000).rounded() / 1000)),
                (
                    "threadsMoved",
                    transition.map {
                        .object([
                            ("atOnce", .int(Int64($0.movedAtOnce))), ("oneByOne", .int(Int64($0.movedLater))),
                            ("rounds", .int(Int64($0.rounds))),
                        ])
                    } ?? .null
                ),
                ("area", .object([("start", .integer(area.start)), ("size", .integer(area.size))])),
                (
                    "functions",
                    .array(
                        area.functions.map { f in
                            .object([
                                ("name", .string(f.name)), ("address", .integer(f.address)),
                                ("newAddress", .integer(f.newAddress)),
                            ])
                        })
                ),
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
        let patch = try PatchFile(path: options.patch)
        let object = try target.object(buildID: patch.manifest.buildID, patch: options.patch)
        let symbols = try target.symbols(object)
        if let same = target.scan.areas.first(where: { $0.digest == patch.digest }) {
            guard same.inTransition else {
                throw ProcessError(
                    .state, "\(options.patch) is already applied to process \(options.pid) as patch #\(same.sequence)")
            }
            return try finish(same, patch: patch, object: object, symbols: symbols, target: target, started: started)
        }
        let planned = try Apply.locate(
            patch.manifest, object: object, symbols: symbols, target: target, what: options.patch)
        let linker = try Linker(patch: patch)

        // Place and link the area while the program runs.
        var base = try Apply.chooseAddress(
            size: linker.layout.size, near: object.span, map: target.map, pid: options.pid)
        var (area, image) = try Apply.link(
            linker, at: base, planned: planned, patch: patch, object: object, target: target,
            sequence: target.scan.nextSequence, model: options.model)

        // Attach, and map the area through one thread; the others run on.
        // MAP_FIXED_NOREPLACE fails rather than map over something the
        // program mapped meanwhile; then the next hole is tried.
        let tracer = try Tracer(pid: options.pid)
        var areaMapped: PatchArea?
        do throws(ProcessError) {
            let tid = try tracer.stopOne()
            try DebugPause.point("attached")
            let prepareStart = tracer.stopStarted
            for round in 1...4 {
                let injector = try Injector(
                    tracer: tracer, memory: target.memory, objects: target.objects, map: target.map)
                let data = (base + linker.layout.dataStart)..<(base + linker.layout.size)
                let results = try injector.run(
                    in: tid,
                    Injector.createArea(
                        name: area.mappingName, address: base,
                        size: linker.layout.size, writable: data))
                if round < 4, let mmap = results.first(where: { $0.number == Injector.Number.mmap }), mmap.result == -17
                {  // EEXIST
                    try target.rescan()
                    base = try Apply.chooseAddress(
                        size: linker.layout.size, near: object.span, map: target.map, pid: options.pid)
                    (area, image) = try Apply.link(
                        linker, at: base, planned: planned, patch: patch, object: object, target: target,
                        sequence: target.scan.nextSequence, model: options.model)
                    continue
                }
                if let mmap = results.first(where: { $0.number == Injector.Number.mmap }),
                    UInt64(bitPattern: mmap.result) == base
                {
                    areaMapped = area  // from here on, a failure unmaps it again
                }
                try Apply.checkCreated(results, base: base, pid: options.pid)
                break
            }
            try tracer.resumeAll()
            let preparationPause = Double(Clock.monotonicNanoseconds() - prepareStart) / 1e9
            try tracer.service()  // signals that stopped other threads meanwhile

            // Write the area while the program runs; nothing refers to it yet.
            try Apply.write(area, image: image, linker: linker, target: target)
            try UnwindRegistration.register(area, tracer: tracer, target: target)
            try DebugPause.point("loaded")

            if options.model != .stopCheck {
                var leaving = planned.functions.flatMap(\.blocking)
                for f in area.functions {
                    leaving.append(
                        Activeness.Range(
                            range: f.dispatcher..<f.dispatcher + f.dispatcherSize, function: "\(f.name) (dispatcher)"))
                }
                let outcome = try Apply.transition(
                    &area, tracer: tracer, target: target, model: options.model,
                    leaving: Activeness(leaving), deadline: started + options.timeout,
                    timeout: options.timeout)
                areaMapped = nil
                try tracer.detach()
                return Report(
                    pid: options.pid, area: area, attempts: outcome.rounds, pauses: outcome.pauses,
                    seconds: Clock.now() - started, preparationPause: preparationPause, commitBreakdown: (0, 0, 0, 0),
                    transition: outcome)
            }

            // Attempts.
            let model = StopCheck(
                tracer: tracer, target: target, activeness: Activeness(planned.functions.flatMap(\.blocking)),
                deadline: started + options.timeout)
            let outcome = try model.run { () throws(ProcessError) in try AreaSwitch.on(&area, memory: target.memory) }
            if !outcome.switched {
                _ = try AreaSwitch.settle(area, tracer: tracer, target: target)
                areaMapped = nil
                try tracer.detach()
                throw StopCheck.busy(
                    pid: options.pid, outcome, timeout: options.timeout, result: "The process is unchanged.")
            }
            try tracer.detach()
            return Report(
                pid: options.pid, area: area, attempts: outcome.attempts, pauses: outcome.pauses,
                seconds: Clock.now() - started, preparationPause: preparationPause, commitBreakdown: outcome.breakdown)
        } catch {
            // Leave the process whole: undo a switch not yet made, finish one made.
            if !tracer.threads.isEmpty, let area = areaMapped,
                let applied = try? AreaSwitch.settle(area, tracer: tracer, target: target), applied
            {
                let flag = target.memory.readPrefix(area.flagAddress, count: 1).first ?? 0
                tracer.detachQuietly()
                if flag >= 2 {
                    throw ProcessError(
                        error.kind,
                        "\(error.message) (patch #\(area.sequence) is left in a per-thread transition, every thread wholly on one side: `suture process apply` with the same patch finishes it, `revert` reverses it)"
                    )
                }
                throw ProcessError(
                    error.kind, "\(error.message) (the switch had been made: patch #\(area.sequence) is applied)")
            }
            tracer.detachQuietly()
            throw error
        }
    }

    /// Finishes a per-thread transition that an earlier Suture left in
    /// progress (it died or was interrupted), toward the new code.
    func finish(
        _ area: PatchArea, patch: PatchFile, object: LoadedObject, symbols: SymbolTable, target: Target,
        started: Double
    ) throws(ProcessError) -> Report {
        let planned = try Apply.locate(
            patch.manifest, object: object, symbols: symbols, target: target, what: options.patch)
        let model = options.model == .stopCheck ? area.model : options.model
        var area = area
        let tracer = try Tracer(pid: options.pid)
        do throws(ProcessError) {
            let outcome = try Apply.transition(
                &area, tracer: tracer, target: target, model: model == .stopCheck ? .perThread : model,
                leaving: Activeness(planned.functions.flatMap(\.blocking)),
                deadline: started + options.timeout, timeout: options.timeout)
            try tracer.detach()
            return Report(
                pid: options.pid, area: area, attempts: outcome.rounds, pauses: outcome.pauses,
                seconds: Clock.now() - started,
                preparationPause: 0, commitBreakdown: (0, 0, 0, 0), transition: outcome)
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

    /// Runs a transition toward the new code; on timeout, takes every
    /// thread back to the old code and removes the patch, then throws.
    static func transition(
        _ area: inout PatchArea, tracer: Tracer, target: Target, model: PatchArea.Model,
        leaving: Activeness, deadline: Double, timeout: Double
    ) throws(ProcessError) -> Transition.Outcome {
        let forward = Transition(
            tracer: tracer, target: target, direction: .toNew, model: model, leaving: leaving, deadline: deadline)
        let outcome = try forward.run(&area)
        if outcome.completed { return outcome }
        let names = Set(outcome.held.map(\.function)).sorted().joined(separator: ", ")
        let why =
            "process \(tracer.pid): gave up after \(outcome.rounds) rounds in \(String(format1: timeout)) s; threads stayed inside \(names) (\(Transition.describe(outcome.held)))."
        let back = Transition(
            tracer: tracer, target: target, direction: .toOld, model: model,
            leaving: Transition.patchCode(area), deadline: Clock.now() + timeout)
        let reverse = try back.run(&area)
        guard reverse.completed else {
            try tracer.detach()
            throw ProcessError(
                .busy,
                "\(why) Taking the threads back to the old code timed out as well (\(Transition.describe(reverse.held))): the transition back is left in progress; `suture process revert` finishes it."
            )
        }
        let removed = try Transition.remove(area, tracer: tracer, target: target, deadline: Clock.now() + timeout)
        try tracer.detach()
        guard removed.switched else {
            throw ProcessError(
                .busy,
                "\(why) Every thread runs the old code again, but the patch's memory stays mapped (threads inside it); `suture process revert` removes it."
            )
        }
        throw ProcessError(.busy, "\(why) Every thread is back on the old code and the patch is removed.")
    }
}
