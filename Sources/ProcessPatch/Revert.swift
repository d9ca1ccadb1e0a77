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

        public init(pid: Int32, patch: String? = nil, timeout: Double = 10) {
            self.pid = pid
            self.patch = patch
            self.timeout = timeout
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
                    try tracer.stopAll()
                    try Revert.unmap(start: i.start, size: i.size, tracer: tracer, target: target)
                    try tracer.resumeAll()
                    try tracer.detach()
                } catch {
                    tracer.detachQuietly()
                    throw error
                }
                return Report(pid: options.pid, name: i.name, sequence: Revert.sequence(of: i.name), attempts: 1, pauses: [],
                              seconds: Clock.now() - started)
            }
            area = newestComplete!
        }
        for newer in scan.areas where newer.sequence > area.sequence {
            let shared = area.functions.filter { f in newer.functions.contains { $0.address == f.address } }
            if let f = shared.first {
                throw ProcessError(.state, "patch #\(newer.sequence) (\(newer.name)) also replaces \(f.name); revert it first")
            }
        }
        let status = try Status.read(target)
        if let p = status.patches.first(where: { $0.area.sequence == area.sequence }),
           let odd = p.functions.first(where: { $0.state == .unknown }) {
            throw ProcessError(.state, "the entry of \(odd.function.name) holds bytes suture did not write; refusing to overwrite them")
        }

        // Code that must not be running: all of the patch's area.
        var ranges: [Activeness.Range] = []
        for f in area.functions {
            ranges.append(Activeness.Range(range: f.newAddress..<f.newAddress + max(f.newSize, 1), function: "\(f.name) (patch #\(area.sequence))"))
            ranges.append(Activeness.Range(range: f.dispatcher..<f.dispatcher + f.dispatcherSize, function: "\(f.name) (dispatcher of patch #\(area.sequence))"))
        }
        ranges.append(Activeness.Range(range: area.text, function: "code of patch #\(area.sequence)"))
        let activeness = Activeness(ranges)

        let tracer = try Tracer(pid: options.pid)
        var switching = false
        do throws(ProcessError) {
            let deadline = started + options.timeout
            var pauses: [Double] = []
            var attempts = 0
            var wait = 0.01
            var blockers: [Activeness.Blocker] = []
            var done = false
            while true {
                try Interruption.check()
                attempts += 1
                try tracer.stopAll()
                blockers = try activeness.check(tracer: tracer, memory: target.memory, map: &target.map)
                if blockers.isEmpty {
                    switching = true
                    try Revert.commit(area, memory: target.memory)
                    done = true
                }
                try tracer.resumeAll()
                pauses.append(Double(Clock.monotonicNanoseconds() - tracer.stopStarted) / 1e9)
                if done {
                    // Nothing refers to the area any more: unmap it in a stop of its own.
                    try tracer.stopAll()
                    try Revert.unmap(start: area.start, size: area.size, tracer: tracer, target: target)
                    try tracer.resumeAll()
                    break
                }
                if Clock.now() + wait > deadline { break }
                try tracer.run(for: wait)
                wait = min(wait * 1.5, 0.25)
            }
            if !done {
                try tracer.detach()
                let names = Set(blockers.map(\.function)).sorted()
                throw ProcessError(.busy, "process \(options.pid): gave up after \(attempts) attempts in \(String(format1: options.timeout)) s; threads stayed inside \(names.joined(separator: ", ")) (\(blockers.prefix(8).map(\.description).joined(separator: "; "))). Patch #\(area.sequence) stays applied.")
            }
            try tracer.detach()
            return Report(pid: options.pid, name: area.name, sequence: area.sequence, attempts: attempts, pauses: pauses,
                          seconds: Clock.now() - started)
        } catch {
            if switching, let reverted = try? Revert.settle(area, tracer: tracer, target: target) {
                tracer.detachQuietly()
                throw ProcessError(error.kind, "\(error.message) (patch #\(area.sequence) is \(reverted ? "reverted" : "still applied"))")
            }
            tracer.detachQuietly()
            throw error
        }
    }

    /// Brings a revert interrupted during its switch to a whole state: with
    /// the flag already off, finish it (original entries, unmap); with the
    /// flag still on, undo it (direct jumps again). Returns whether the patch
    /// ended reverted.
    static func settle(_ area: PatchArea, tracer: Tracer, target: Target) throws(ProcessError) -> Bool {
        let memory = target.memory
        try tracer.stopAll()
        let length = X86Code.entryJumpLength
        if try memory.read(area.flagAddress, count: 1)[0] == 0 {
            for f in area.functions {
                let now = memory.readPrefix(f.address, count: length)
                if now == f.viaDispatcher || now == f.direct { try memory.write(f.address, f.original) }
            }
            try unmap(start: area.start, size: area.size, tracer: tracer, target: target)
            try tracer.resumeAll()
            return true
        }
        for f in area.functions where memory.readPrefix(f.address, count: length) == f.viaDispatcher {
            try memory.write(f.address, f.direct)
        }
        try memory.write(area.start + 18, [PatchArea.Phase.applied.rawValue])
        try tracer.resumeAll()
        return false
    }

    static func sequence(of mappingName: String) -> Int {
        Int(mappingName.split(separator: ":").dropFirst().first ?? "") ?? 0
    }

    /// The reverse commit, with the world stopped.
    static func commit(_ area: PatchArea, memory: ProcessMemory) throws(ProcessError) {
        try memory.write(area.start + 18, [PatchArea.Phase.reverting.rawValue])
        var first = true
        for f in area.functions where memory.readPrefix(f.address, count: f.direct.count) == f.direct {
            try memory.write(f.address, f.viaDispatcher)
            if first { try DebugPause.point("revert-started"); first = false }
        }
        try memory.write(area.flagAddress, [0])
        try DebugPause.point("reverted")
        for f in area.functions {
            let now = memory.readPrefix(f.address, count: f.direct.count)
            if now == f.viaDispatcher || now == f.direct { try memory.write(f.address, f.original) }
        }
        try memory.write(area.start + 18, [PatchArea.Phase.reverted.rawValue])
    }

    /// munmap through a stopped thread.
    static func unmap(start: UInt64, size: UInt64, tracer: Tracer, target: Target) throws(ProcessError) {
        let injector = try Injector(tracer: tracer, memory: target.memory, objects: target.objects, map: target.map)
        guard let tid = tracer.injectionThread() else { throw ProcessError(.trace, "process \(tracer.pid): no thread to run injected code") }
        let results = try injector.run(in: tid, Injector.unmap(address: start, size: size))
        if let r = results.last, r.result < 0 {
            throw ProcessError(.trace, "process \(tracer.pid): injected munmap failed: \(errnoText(-r.result))")
        }
    }
}
