// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The processes of a systemd unit, read from its control group.
///
/// systemd puts every process of `NAME.service` into a cgroup directory of
/// that name (`/system.slice/NAME.service`, or deeper for user services and
/// nested slices). Depending on how the system booted, systemd keeps its tree
/// in the unified hierarchy (cgroup v2, `cgroup2` mounted at `/sys/fs/cgroup`
/// or `/sys/fs/cgroup/unified`) or in the named v1 hierarchy `name=systemd`
/// (`/sys/fs/cgroup/systemd`), or both. Every such hierarchy mounted here is
/// searched for a directory of the unit's name; systemd itself is not asked,
/// so the lookup needs no D-Bus and works wherever the tree is mounted.
public struct ControlGroup: Sendable {
    /// The unit's cgroup directories (one per hierarchy holding it).
    public let directories: [String]
    /// The unit's path inside its hierarchy, e.g. `/system.slice/x.service`.
    public let path: String

    /// A unit name as systemctl takes it: `x` means `x.service`.
    public static func unitName(_ name: String) -> String {
        let kinds = [".service", ".scope", ".slice", ".socket", ".mount", ".swap"]
        return kinds.contains { name.hasSuffix($0) } ? name : name + ".service"
    }

    /// The mount points of the cgroup hierarchies systemd can use, from
    /// `/proc/self/mountinfo`: every `cgroup2` and the v1 `name=systemd`.
    public static func hierarchies(mountinfo: String) -> [String] {
        var result: [String] = []
        for line in mountinfo.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1).map { $0.split(separator: " ") }
            guard halves.count == 2, halves[0].count >= 5, halves[1].count >= 3 else { continue }
            let mountPoint = unescape(halves[0][4])
            let type = halves[1][0]
            let options = halves[1][2].split(separator: ",")
            if type == "cgroup2" || (type == "cgroup" && options.contains("name=systemd")) {
                if !result.contains(mountPoint) { result.append(mountPoint) }
            }
        }
        return result
    }

    /// A mountinfo field with its octal escapes (`\040` for a space) decoded.
    static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        let raw = Array(field.utf8)
        var i = 0
        while i < raw.count {
            if raw[i] == 92, i + 3 < raw.count,
                let v = UInt8(String(decoding: raw[i + 1...i + 3], as: UTF8.self), radix: 8)
            {
                bytes.append(v)
                i += 4
            } else {
                bytes.append(raw[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Finds the unit's cgroup in every systemd hierarchy mounted here.
    public static func unit(_ name: String, mountinfo: String? = nil) throws(ProcessError) -> ControlGroup {
        let unit = unitName(name)
        guard !unit.contains("/"), unit != ".service" else {
            throw ProcessError(.noSuchProcess, "\(name): not a unit name")
        }
        let roots = hierarchies(mountinfo: mountinfo ?? FileSystem.readTextIfPresent("/proc/self/mountinfo") ?? "")
        guard !roots.isEmpty else {
            throw ProcessError(
                .noSuchProcess,
                "unit \(unit): no cgroup v2 hierarchy and no v1 name=systemd hierarchy is mounted (see /proc/self/mountinfo)"
            )
        }
        var found: [(root: String, relative: String)] = []
        for root in roots {
            for relative in search(root, relative: "", for: unit, depth: 0) { found.append((root, relative)) }
        }
        let paths = Set(found.map(\.relative)).sorted()
        guard let path = paths.first else {
            throw ProcessError(
                .noSuchProcess,
                "unit \(unit) has no cgroup in \(roots.joined(separator: ", ")) (is it running?)")
        }
        guard paths.count == 1 else {
            throw ProcessError(
                .noSuchProcess,
                "unit \(unit) names several cgroups: \(paths.joined(separator: ", ")); pick the processes with --pid")
        }
        return ControlGroup(directories: found.map { Path.join($0.root, String($0.relative.dropFirst())) }, path: path)
    }

    /// Relative paths of directories named `unit` below `root`.
    private static func search(_ root: String, relative: String, for unit: String, depth: Int) -> [String] {
        guard depth < 10, let names = try? FileSystem.list(relative.isEmpty ? root : root + relative) else { return [] }
        var result: [String] = []
        for name in names {
            let child = relative + "/" + name
            guard FileSystem.kind(root + child) == .directory else { continue }
            if name == unit {
                result.append(child)
            } else {
                result += search(root, relative: child, for: unit, depth: depth + 1)
            }
        }
        return result
    }

    /// The live processes of the unit: `cgroup.procs` of its directories and
    /// of every cgroup below them (a unit may delegate subgroups), sorted.
    /// Zombies and exited processes are left out.
    public func processes() -> [Int32] {
        var pids = Set<Int32>()
        func collect(_ directory: String, depth: Int) {
            for line in (FileSystem.readTextIfPresent(Path.join(directory, "cgroup.procs")) ?? "").split(
                separator: "\n")
            {
                if let pid = Int32(String(line).trimmingWhitespace()), pid > 0 { pids.insert(pid) }
            }
            guard depth < 10 else { return }
            for name in (try? FileSystem.list(directory)) ?? []
            where FileSystem.kind(Path.join(directory, name)) == .directory {
                collect(Path.join(directory, name), depth: depth + 1)
            }
        }
        for d in directories { collect(d, depth: 0) }
        return pids.filter { TargetProcess.isAlive($0) }.sorted()
    }
}
