// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// `suture process revert` on several processes (repeated `--pid`, or every
/// process of a unit): each one in turn, every one tried even when another
/// fails. A process without the patch (or without any patch, when none is
/// named) is reported as not patched; that is only an error when no process
/// had it.
public struct RevertMany {
    public struct Options: Sendable {
        public var pids: [Int32]
        public var patch: String?
        public var timeout: Double
        public var model: PatchArea.Model?
        /// A process that is gone or cannot be opened counts as not
        /// patched (a unit's processes, or every process of the system).
        public var members: Bool

        public init(
            pids: [Int32], patch: String? = nil, timeout: Double = 10, model: PatchArea.Model? = nil,
            members: Bool = false
        ) {
            self.pids = pids
            self.patch = patch
            self.timeout = timeout
            self.model = model
            self.members = members
        }
    }

    public enum Outcome: Sendable {
        case reverted(Revert.Report)
        case notPatched(String)
        case failed(ProcessError)

        public var name: String {
            switch self {
            case .reverted: return "reverted"
            case .notPatched: return "not-patched"
            case .failed: return "failed"
            }
        }
    }

    public struct Entry: Sendable {
        public let pid: Int32
        public let name: String
        public let outcome: Outcome
    }

    public struct Report: Sendable {
        public var entries: [Entry] = []
        public var seconds: Double = 0
        public var error: ProcessError?
    }

    let options: Options

    public init(_ options: Options) {
        self.options = options
    }

    public func run() -> Report {
        let started = Clock.now()
        var report = Report()
        for pid in options.pids {
            let name = (try? TargetProcess(pid: pid))?.name ?? "?"
            do throws(ProcessError) {
                let r = try Revert(
                    .init(pid: pid, patch: options.patch, timeout: options.timeout, model: options.model)
                ).run()
                report.entries.append(Entry(pid: pid, name: name, outcome: .reverted(r)))
            } catch {
                if error.kind == .nothing
                    || (options.members && (error.kind == .noSuchProcess || error.kind == .permission))
                {
                    report.entries.append(Entry(pid: pid, name: name, outcome: .notPatched(error.message)))
                    continue
                }
                report.entries.append(Entry(pid: pid, name: name, outcome: .failed(error)))
                if report.error == nil {
                    report.error = ProcessError(error.kind, "process \(pid) (\(name)): \(error.message)", cause: error)
                }
                if error.kind == .interrupted { break }
            }
        }
        if report.error == nil,
            !report.entries.contains(where: { if case .reverted = $0.outcome { true } else { false } })
        {
            report.error = ProcessError(
                .nothing,
                options.patch.map { "\($0) is applied to none of the \(options.pids.count) process(es)" }
                    ?? "none of the \(options.pids.count) process(es) has a suture patch")
        }
        report.seconds = Clock.now() - started
        return report
    }
}

// MARK: - Reports

extension RevertMany.Report {
    public var json: JSON {
        var fields: [(String, JSON)] = [
            (
                "processes",
                .array(
                    entries.map { e in
                        var o: [(String, JSON)] = [
                            ("pid", .int(Int64(e.pid))), ("name", .string(e.name)), ("state", .string(e.outcome.name)),
                        ]
                        switch e.outcome {
                        case .reverted(let r):
                            o += [
                                ("patch", .string(r.name)), ("sequence", .int(Int64(r.sequence))),
                                ("attempts", .int(Int64(r.attempts))),
                                ("revertSeconds", .double((r.seconds * 1000).rounded() / 1000)),
                            ]
                        case .notPatched(let why): o.append(("reason", .string(why)))
                        case .failed(let error): o.append(("error", error.json))
                        }
                        return .object(o)
                    })
            ),
            (
                "reverted",
                .int(Int64(entries.filter { if case .reverted = $0.outcome { true } else { false } }.count))
            ),
            ("seconds", .double((seconds * 1000).rounded() / 1000)),
        ]
        if let error { fields.append(("error", error.json)) }
        return .object(fields)
    }

    public var text: String {
        var out = ""
        for e in entries {
            out += "  \(String(e.pid).padded(8)) \(Printable.escaped(e.name).padded(16)) "
            switch e.outcome {
            case .reverted(let r):
                out +=
                    "reverted patch #\(r.sequence) (\(Printable.escaped(r.name))), \(r.attempts) attempt(s), \(Int((r.seconds * 1000).rounded())) ms\n"
            case .notPatched(let why): out += "not patched: \(Printable.escaped(why))\n"
            case .failed(let error): out += "failed: \(Printable.escaped(error.message))\n"
            }
        }
        return out
    }
}
