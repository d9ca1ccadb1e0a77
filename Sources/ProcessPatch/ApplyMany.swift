// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// `suture process apply` on several processes (repeated `--pid`, or every
/// process of a unit): all of them or none.
///
/// 1. Check every process while all run on: it is alive and may be patched,
///    it maps the object with the patch's build-id, and its old functions'
///    bytes are the ones the patch was built against. One that fails refuses
///    the whole set and nothing is touched. With `skipUnmapped` (a unit), a
///    process that maps no object with that build-id (a wrapper shell, a
///    helper of another program), or that exits meanwhile, is skipped and
///    said so.
/// 2. Apply to each in turn, each under its own short stop (the others run
///    on). If one fails (a thread stays inside an old function until the
///    timeout, the process exits, a ptrace or injection error), the
///    processes already patched are reverted, newest first, so the set
///    ends as it began; the report says what happened to each.
///
/// Processes that start after the list was read are not included: running
/// the same apply again patches them and leaves those that have the patch.
///
/// A signal to Suture (SIGINT, SIGTERM, SIGHUP) stops the batch after the
/// process in hand is settled; the processes patched before it keep the
/// patch (`revert` with the same selection takes it out).
public struct ApplyMany {
    public struct Options: Sendable {
        public var pids: [Int32]
        public var patch: String
        public var model: PatchArea.Model
        public var timeout: Double
        /// Skip processes that do not map the patched object, cannot be
        /// read, or exit before they are patched (a unit's processes, or
        /// every process of the system).
        public var skipUnmapped: Bool

        public init(
            pids: [Int32], patch: String, model: PatchArea.Model = .stopCheck, timeout: Double = 10,
            skipUnmapped: Bool = false
        ) {
            self.pids = pids
            self.patch = patch
            self.model = model
            self.timeout = timeout
            self.skipUnmapped = skipUnmapped
        }
    }

    /// What happened to one process.
    public enum Outcome: Sendable {
        case applied(Apply.Report)
        /// The patch was already applied before this run (left as it is).
        case alreadyApplied(sequence: Int)
        /// Does not map the patched object (unit members only).
        case skipped(String)
        /// Refused by the check, or failed while applying.
        case failed(ProcessError)
        /// Applied, then reverted because another process failed.
        case rolledBack(Apply.Report?, Revert.Report)
        /// Applied; reverting it after another process failed did not work.
        case rollbackFailed(Apply.Report?, ProcessError)
        /// Not tried because another process failed first.
        case notAttempted

        public var name: String {
            switch self {
            case .applied: return "applied"
            case .alreadyApplied: return "already-applied"
            case .skipped: return "skipped"
            case .failed: return "failed"
            case .rolledBack: return "rolled-back"
            case .rollbackFailed: return "rollback-failed"
            case .notAttempted: return "not-attempted"
            }
        }
    }

    public struct Entry: Sendable {
        public let pid: Int32
        public let name: String
        public var outcome: Outcome
    }

    public struct Report: Sendable {
        public let patch: String
        public var entries: [Entry]
        public var seconds: Double = 0
        /// The failure that stopped the batch; nil when every process has the patch.
        public var error: ProcessError?

        public var succeeded: Bool { error == nil }
    }

    let options: Options

    public init(_ options: Options) {
        self.options = options
    }

    public func run() throws(ProcessError) -> Report {
        let started = Clock.now()
        guard !options.pids.isEmpty else { throw ProcessError(.noSuchProcess, "no process to patch") }
        let patch = try PatchFile(path: options.patch)
        var report = Report(
            patch: patch.manifest.name,
            entries: options.pids.map {
                Entry(pid: $0, name: (try? TargetProcess(pid: $0))?.name ?? "?", outcome: .notAttempted)
            })

        // 1. Check them all; touch nothing if one does not fit.
        for i in report.entries.indices {
            do throws(ProcessError) {
                switch try ApplyMany.check(
                    report.entries[i].pid, patch: patch, path: options.patch, members: options.skipUnmapped)
                {
                case .fits: break
                case .already(let sequence): report.entries[i].outcome = .alreadyApplied(sequence: sequence)
                case .notMember(let why): report.entries[i].outcome = .skipped(why)
                }
            } catch {
                report.entries[i].outcome = .failed(error)
                report.error = ProcessError(
                    error.kind,
                    "process \(report.entries[i].pid) (\(report.entries[i].name)) does not fit: \(ApplyMany.sentence(error.message)) No process was touched.",
                    cause: error)
                report.seconds = Clock.now() - started
                return report
            }
        }
        guard report.entries.contains(where: { if case .notAttempted = $0.outcome { true } else { false } }) else {
            if report.entries.allSatisfy({ if case .skipped = $0.outcome { true } else { false } }) {
                report.error = ProcessError(
                    .buildIDMismatch,
                    "none of the \(report.entries.count) process(es) maps an object with build-id \(hexString(patch.manifest.buildID))"
                )
            }
            report.seconds = Clock.now() - started
            return report
        }

        // 2. Apply one after another; on a failure, revert those done.
        var done: [Int] = []
        for i in report.entries.indices {
            guard case .notAttempted = report.entries[i].outcome else { continue }
            let pid = report.entries[i].pid
            do throws(ProcessError) {
                let applied = try Apply(
                    .init(pid: pid, patch: options.patch, model: options.model, timeout: options.timeout)
                ).run()
                report.entries[i].outcome = .applied(applied)
                done.append(i)
            } catch {
                if options.skipUnmapped && error.kind == .noSuchProcess && !TargetProcess.isAlive(pid) {
                    report.entries[i].outcome = .skipped("exited")
                    continue
                }
                report.entries[i].outcome = .failed(error)
                report.error = error
                // A failure after the switch leaves this one patched too.
                if error.kind != .interrupted, ApplyMany.hasPatch(pid, digest: patch.digest) { done.append(i) }
                break
            }
        }
        if let failure = report.error {
            if failure.kind != .interrupted {
                for i in done.reversed() {
                    var applied: Apply.Report?
                    if case .applied(let r) = report.entries[i].outcome { applied = r }
                    do throws(ProcessError) {
                        let reverted = try Revert(
                            .init(pid: report.entries[i].pid, patch: options.patch, timeout: options.timeout)
                        ).run()
                        report.entries[i].outcome = .rolledBack(applied, reverted)
                    } catch {
                        report.entries[i].outcome = .rollbackFailed(applied, error)
                    }
                }
            }
            let failed = report.entries.first { if case .failed = $0.outcome { true } else { false } }
            let stuck = report.entries.filter { if case .rollbackFailed = $0.outcome { true } else { false } }
            let what =
                failure.kind == .interrupted
                ? "the batch stopped; \(done.count) process(es) keep the patch"
                : stuck.isEmpty
                    ? "\(done.count) process(es) patched before it were reverted"
                    : "reverting failed in process(es) \(stuck.map { String($0.pid) }.joined(separator: ", ")), which keep the patch"
            let pid = failed?.pid ?? 0
            let which = failure.message.hasPrefix("process \(pid)") ? "" : "process \(pid) (\(failed?.name ?? "?")): "
            report.error = ProcessError(
                failure.kind, "\(which)\(ApplyMany.sentence(failure.message)) Rollback: \(what).", cause: failure)
        }
        report.seconds = Clock.now() - started
        return report
    }

    enum Fit {
        case fits
        /// The same patch is applied already, as this patch number.
        case already(Int)
        /// Not one to patch (members only), and why.
        case notMember(String)
    }

    /// The reason a process that maps no object of this build-id is skipped.
    static func unmapped(_ patch: PatchFile) -> String {
        "maps no object with build-id \(hexString(patch.manifest.buildID))"
    }

    /// Checks one process without stopping it. `members`: a process that
    /// cannot be read (gone, another user's) or maps no object with the
    /// patch's build-id is no member of the set rather than a failure.
    static func check(_ pid: Int32, patch: PatchFile, path: String, members: Bool) throws(ProcessError) -> Fit {
        let target: Target
        do throws(ProcessError) {
            target = try Target(pid: pid, writable: false)
        } catch {
            guard members else { throw error }
            return .notMember(error.kind == .noSuchProcess ? "exited" : error.message)
        }
        if members && !target.objects.contains(where: { $0.buildID == patch.manifest.buildID }) {
            return .notMember(unmapped(patch))
        }
        let object = try target.object(buildID: patch.manifest.buildID, patch: path)
        if let same = target.scan.areas.first(where: { $0.digest == patch.digest }), !same.inTransition {
            return .already(same.sequence)
        }
        _ = try Apply.locate(
            patch.manifest, object: object, symbols: target.symbols(object), target: target, what: path)
        return .fits
    }

    /// A message ending in a full stop, to go on with another sentence.
    static func sentence(_ message: String) -> String {
        message.hasSuffix(".") ? message : message + "."
    }

    static func hasPatch(_ pid: Int32, digest: String) -> Bool {
        guard let target = try? Target(pid: pid, writable: false) else { return false }
        return target.scan.areas.contains { $0.digest == digest }
    }
}
