// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The text that `install`, `uninstall`, `load --all` and `list --installed`
/// print for people.
public enum StoreText {
    public static func install(_ outcome: InstallOutcome) -> String {
        let entry = outcome.entry
        let patch = entry.patch
        var lines = ["installed \(entry.name) for \(patch?.release ?? "?"): \(entry.module ?? "?")"]
        if let patch {
            lines.append("  sha256 \(patch.sha256), \(patch.size) bytes, from \(patch.source), at \(patch.installedAt)")
        }
        switch outcome.load {
        case .loaded: lines.append("  loaded now")
        case .alreadyLoaded: lines.append("  loaded already")
        case .notRunning:
            lines.append(
                "  not loaded: kernel \(patch?.release ?? "?") is not running; it loads at that kernel's boot (`suture load --all`)"
            )
        }
        if let previous = outcome.previous {
            lines.append("  replaces the copy installed at \(previous.installedAt) from \(previous.source)")
        }
        if !outcome.replaced.isEmpty {
            lines.append("  replaced and removed from the kernel: \(outcome.replaced.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func uninstall(_ outcome: UninstallOutcome, release: String) -> String {
        var text = "uninstalled \(outcome.entry.name) for \(release)\n"
        if outcome.stillLoaded {
            text +=
                "\(outcome.entry.name) stays loaded in the running kernel; `suture unload \(outcome.entry.name)` removes it\n"
        }
        return text
    }

    public static func loadAll(_ outcome: LoadAllOutcome) -> String {
        guard !outcome.results.isEmpty else {
            return "no live patches are installed for \(outcome.release)\n"
        }
        var lines = outcome.results.map { result -> String in
            switch result.status {
            case .loaded:
                return "\(result.name): loaded"
                    + (result.seconds.map {
                        " (\($0 < 0.005 ? "<0.01 s" : LivepatchText.seconds(($0 * 100).rounded() / 100)))"
                    } ?? "")
            case .alreadyLoaded: return "\(result.name): loaded already"
            case .superseded: return "\(result.name): skipped, a cumulative patch installed later replaces it"
            case .failed: return "\(result.name): FAILED: \(result.error?.description ?? "")"
            }
        }
        let failed = outcome.failed.count
        if failed > 0 {
            lines.append("\(failed) of \(outcome.results.count) installed patches for \(outcome.release) failed")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func installed(_ report: InstalledReport) -> String {
        var lines: [String] = []
        if report.installed.isEmpty {
            lines.append("no live patches are installed for \(report.release) (\(report.directory))")
        } else {
            lines.append("installed for \(report.release)\(report.running ? " (running)" : "") in \(report.directory):")
            let places = report.installed.map { $0.entry.patch.map { "\($0.sequence)." } ?? "-" }
            let placeWidth = places.map(\.count).max() ?? 0
            let width = report.installed.map(\.entry.name.count).max() ?? 0
            for (status, place) in zip(report.installed, places) {
                let entry = status.entry
                let name = entry.name + String(repeating: " ", count: width - entry.name.count)
                var line = "  " + String(repeating: " ", count: placeWidth - place.count) + "\(place) \(name)  "
                if let patch = entry.patch, entry.problem == nil {
                    var installed = "installed \(patch.installedAt) from \(patch.source)"
                    if let signer = patch.signer { installed += "; signed by \(signer)" }
                    line += status.state == .notRunning ? installed : "\(state(status)); \(installed)"
                } else {
                    line += state(status)
                }
                lines.append(line)
            }
        }
        if !report.notInstalled.isEmpty {
            lines.append("loaded but not installed: \(report.notInstalled.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func state(_ status: InstalledStatus) -> String {
        switch status.state {
        case .loaded: return "loaded"
        case .otherBuildLoaded: return "ANOTHER BUILD IS LOADED" + (status.loadedFrom.map { " (from \($0))" } ?? "")
        case .notLoaded: return "NOT LOADED"
        case .superseded: return "not loaded: a cumulative patch installed later replaces it"
        case .corrupt: return "DAMAGED: \(status.entry.problem ?? "")"
        case .notRunning: return "installed for a kernel that is not running"
        }
    }
}
