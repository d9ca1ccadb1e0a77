// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The per-process report of `suture process apply` on several processes.
extension ApplyMany.Report {
    /// The patched processes' commit pauses (the last attempt of each), in
    /// seconds, in the order they were patched.
    public var commitPauses: [Double] {
        entries.compactMap { e in
            switch e.outcome {
            case .applied(let r), .rolledBack(let r?, _), .rollbackFailed(let r?, _): return r.pauses.last
            default: return nil
            }
        }
    }

    public var count: (applied: Int, skipped: Int) {
        (
            entries.filter { if case .applied = $0.outcome { true } else { false } }.count,
            entries.filter { if case .skipped = $0.outcome { true } else { false } }.count
        )
    }

    public var json: JSON {
        func micro(_ s: Double) -> JSON { .int(Int64((s * 1e6).rounded())) }
        func applied(_ r: Apply.Report) -> [(String, JSON)] {
            let sorted = r.pauses.sorted()
            return [
                ("sequence", .int(Int64(r.area.sequence))), ("model", .string(r.area.model.name)),
                ("attempts", .int(Int64(r.attempts))), ("pausesMicroseconds", .array(r.pauses.map(micro))),
                ("medianPauseMicroseconds", micro(sorted.isEmpty ? 0 : sorted[sorted.count / 2])),
                ("preparationPauseMicroseconds", micro(r.preparationPause)),
                ("applySeconds", .double((r.seconds * 1000).rounded() / 1000)),
            ]
        }
        var fields: [(String, JSON)] = [
            ("patch", .string(patch)),
            (
                "processes",
                .array(
                    entries.map { e in
                        var o: [(String, JSON)] = [
                            ("pid", .int(Int64(e.pid))), ("name", .string(e.name)), ("state", .string(e.outcome.name)),
                        ]
                        switch e.outcome {
                        case .applied(let r): o += applied(r)
                        case .alreadyApplied(let n): o.append(("sequence", .int(Int64(n))))
                        case .skipped(let why): o.append(("reason", .string(why)))
                        case .failed(let error): o.append(("error", error.json))
                        case .rolledBack(let r, let back):
                            o += r.map(applied) ?? []
                            o.append(("revertSeconds", .double((back.seconds * 1000).rounded() / 1000)))
                        case .rollbackFailed(let r, let error):
                            o += r.map(applied) ?? []
                            o.append(("error", error.json))
                        case .notAttempted: break
                        }
                        return .object(o)
                    })
            ),
            ("applied", .int(Int64(count.applied))),
            ("skipped", .int(Int64(count.skipped))),
            ("seconds", .double((seconds * 1000).rounded() / 1000)),
        ]
        if let error { fields.append(("error", error.json)) }
        return .object(fields)
    }

    /// One line per process.
    public var text: String {
        func e(_ s: String) -> String { Printable.escaped(s) }
        func applied(_ r: Apply.Report) -> String {
            let sorted = r.pauses.sorted()
            let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            let how =
                r.transitionSummary ?? "\(r.attempts) attempt(s), median pause \(Int((median * 1e6).rounded())) µs"
            return "patch #\(r.area.sequence) (\(how), \(Int((r.seconds * 1000).rounded())) ms)"
        }
        var out = ""
        for entry in entries {
            out += "  \(String(entry.pid).padded(8)) \(e(entry.name).padded(16)) "
            switch entry.outcome {
            case .applied(let r): out += "applied as \(applied(r))\n"
            case .alreadyApplied(let n): out += "already has it as patch #\(n)\n"
            case .skipped(let why): out += "skipped: \(e(why))\n"
            case .failed(let error): out += "failed: \(e(error.message))\n"
            case .rolledBack(let r, _): out += "rolled back (was \(r.map(applied) ?? "applied"))\n"
            case .rollbackFailed(_, let error): out += "KEEPS THE PATCH, revert failed: \(e(error.message))\n"
            case .notAttempted: out += "not attempted\n"
            }
        }
        return out
    }
}
