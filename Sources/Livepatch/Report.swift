// SPDX-License-Identifier: GPL-2.0-only
import Platform

// MARK: - JSON

extension PatchFunction {
    public var json: JSON { .object([("name", .string(name)), ("sympos", .integer(sympos))]) }
}

extension PatchObject {
    public var json: JSON {
        .object([
            ("name", .string(name)),
            ("patched", patched.map(JSON.bool) ?? .null),
            ("functions", .array(functions.map(\.json))),
        ])
    }
}

extension PendingTask {
    public var json: JSON {
        .object([
            ("pid", .integer(pid)),
            ("tid", .integer(tid)),
            ("comm", .string(comm)),
            ("stack", .strings(stack.map(\.text))),
            ("patchFunctions", .strings(patchFunctions)),
        ])
    }
}

extension PatchStatus {
    /// The stable shape of one patch in `list`, `status`, `load` and `unload`.
    public var json: JSON {
        .object([
            ("name", .string(name)),
            ("module", .string(module)),
            ("state", .string(state)),
            ("enabled", .bool(enabled)),
            ("transition", .bool(transition)),
            ("direction", .optional(direction?.rawValue)),
            ("replace", replace.map(JSON.bool) ?? .null),
            ("file", .optional(file)),
            ("builtFor", .optional(builtFor)),
            ("diffs", .strings(diffs)),
            ("description", .optional(description)),
            ("cves", .strings(cves)),
            ("signed", signed.map(JSON.bool) ?? .null),
            ("signer", .optional(signer)),
            ("verification", .strings(verification)),
            ("objects", .array(objects.map(\.json))),
            ("pendingTasks", .array(pendingTasks.map(\.json))),
            ("hiddenTasksPending", .bool(hiddenTasksPending)),
        ])
    }
}

/// The JSON documents the commands print.
public enum LivepatchJSON {
    /// `{"patches":[…]}`, then any extra keys.
    public static func patches(_ patches: [PatchStatus], _ extra: [(String, JSON)] = []) -> JSON {
        .object([("patches", .array(patches.map(\.json)))] + extra)
    }
}

// MARK: - Text

/// The text the commands print for people.
public enum LivepatchText {
    /// `list`: one block per patch, objects and functions indented.
    public static func list(_ patches: [PatchStatus]) -> String {
        guard !patches.isEmpty else { return "no live patches loaded\n" }
        return patches.map { block($0, detailed: false).joined(separator: "\n") }.joined(separator: "\n\n") + "\n"
    }

    /// `status`: the same blocks, with pending tasks and their stacks.
    public static func status(_ patches: [PatchStatus]) -> String {
        guard !patches.isEmpty else { return "no live patches loaded\n" }
        return patches.map { block($0, detailed: true).joined(separator: "\n") }.joined(separator: "\n\n") + "\n"
    }

    static func block(_ patch: PatchStatus, detailed: Bool) -> [String] {
        var header = "\(patch.name): \(patch.state)"
        if !patch.present {
            header += " (module loaded, patch disabled or replaced)"
        } else if patch.transition {
            header += " (transition in progress)"
        }
        header += ", replace: " + (patch.replace.map { $0 ? "yes" : "no" } ?? "unknown")
        var lines = [header]
        if detailed, let file = patch.file { lines.append("  file: \(file)") }
        if let release = patch.builtFor { lines.append("  built for: \(release)") }
        for diff in patch.diffs { lines.append("  diff: \(diff)") }
        if let description = patch.description { lines.append("  description: \(description)") }
        if !patch.cves.isEmpty { lines.append("  cves: \(patch.cves.joined(separator: ", "))") }
        if let signed = patch.signed {
            lines.append("  signer: " + (signed ? patch.signer ?? "unreadable signature" : "none (unsigned)"))
        }
        for line in patch.verification { lines.append("  run-pre: \(line)") }
        for object in patch.objects {
            let state: String
            switch object.patched {
            case true?: state = "patched"
            case false?: state = object.isVmlinux ? "not patched" : "waiting (module not loaded)"
            case nil: state = "unknown"
            }
            lines.append("  \(object.name): \(state)")
            for function in object.functions {
                lines.append("    \(function.name),\(function.sympos)")
            }
        }
        if let direction = patch.direction {
            if detailed {
                lines.append("  \(direction.rawValue):")
                lines.append(contentsOf: pendingLines(patch, indent: "    "))
            } else {
                let count =
                    patch.hiddenTasksPending
                    ? "only idle tasks"
                    : patch.pendingTasks.isEmpty
                        ? "tasks" : "\(patch.pendingTasks.count) task\(patch.pendingTasks.count == 1 ? "" : "s")"
                lines.append("  \(direction.rawValue): \(count) pending (see `suture status \(patch.name)`)")
            }
        }
        return lines
    }

    /// Pending tasks with stacks; frames of the patch marked with `>`.
    public static func pendingLines(_ patch: PatchStatus, indent: String) -> [String] {
        if patch.pendingTasks.isEmpty && !patch.hiddenTasksPending {
            return ["\(indent)pending tasks are shown to root only"]
        }
        guard !patch.pendingTasks.isEmpty else {
            return [
                "\(indent)no pending task is visible in /proc: the remaining ones are idle tasks (swapper/N), which /proc does not list"
            ]
        }
        var lines = ["\(indent)\(patch.pendingTasks.count) pending task\(patch.pendingTasks.count == 1 ? "" : "s"):"]
        for task in patch.pendingTasks {
            var line = "\(indent)  \(task.comm) pid \(task.pid)"
            if task.tid != task.pid { line += " tid \(task.tid)" }
            if !task.patchFunctions.isEmpty {
                line += ", in \(task.patchFunctions.joined(separator: ", ")), which \(patch.name) changes"
            }
            lines.append(line)
            if task.stack.isEmpty {
                lines.append("\(indent)      (stack not readable)")
            }
            for frame in task.stack {
                let mark = task.patchFunctions.contains(frame.function) ? "  > " : "    "
                lines.append("\(indent)  \(mark)\(frame.text)")
            }
        }
        return lines
    }

    /// `1.25 s`, `5 s`.
    public static func seconds(_ value: Double) -> String {
        if value == value.rounded() && value < 1e9 { return "\(Int(value)) s" }
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) s"
    }
}
