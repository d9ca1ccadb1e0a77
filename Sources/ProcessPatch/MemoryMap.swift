// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// One line of `/proc/PID/maps`.
public struct Mapping: Sendable, Equatable {
    public let start: UInt64
    public let end: UInt64
    public let readable: Bool
    public let writable: Bool
    public let executable: Bool
    public let shared: Bool
    public let offset: UInt64
    public let inode: UInt64
    /// The path or pseudo-name (`[stack]`, `/memfd:suture:1 (deleted)`), or "".
    public let path: String

    public var size: UInt64 { end - start }
    public func contains(_ address: UInt64) -> Bool { address >= start && address < end }

    public init(
        start: UInt64, end: UInt64, readable: Bool, writable: Bool, executable: Bool, shared: Bool,
        offset: UInt64, inode: UInt64, path: String
    ) {
        self.start = start
        self.end = end
        self.readable = readable
        self.writable = writable
        self.executable = executable
        self.shared = shared
        self.offset = offset
        self.inode = inode
        self.path = path
    }

    /// Whether the mapping is backed by a regular file (not anonymous, not a
    /// pseudo-file, not a memfd).
    public var isFile: Bool {
        inode != 0 && path.hasPrefix("/") && !path.hasPrefix("/memfd:") && !path.hasPrefix("/dev/")
    }
}

/// A process's address space as `/proc/PID/maps` lists it, sorted by address.
public struct MemoryMap: Sendable {
    public let mappings: [Mapping]

    public init(mappings: [Mapping]) {
        self.mappings = mappings.sorted { $0.start < $1.start }
    }

    /// Reads `/proc/PID/maps`.
    public static func read(pid: Int32) throws(ProcessError) -> MemoryMap {
        let text: String
        do {
            text = try FileSystem.readText("/proc/\(pid)/maps")
        } catch {
            throw ProcessError(.noSuchProcess, "process \(pid): cannot read /proc/\(pid)/maps: \(error.description)")
        }
        return try parse(text, what: "/proc/\(pid)/maps")
    }

    /// Parses the text of a maps file.
    public static func parse(_ text: String, what: String = "maps") throws(ProcessError) -> MemoryMap {
        var result: [Mapping] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            // start-end perms offset dev inode [path]
            var fields: [Substring] = []
            var rest = line[...]
            for _ in 0..<5 {
                rest = rest.drop { $0 == " " }
                guard let space = rest.firstIndex(of: " ") else {
                    fields.append(rest)
                    rest = ""
                    break
                }
                fields.append(rest[..<space])
                rest = rest[space...]
            }
            guard fields.count == 5 else {
                throw ProcessError(.trace, "\(what): line \(number + 1) is not a mapping: \(line)")
            }
            let path = String(rest.drop { $0 == " " })
            let range = fields[0].split(separator: "-")
            let perms = Array(fields[1].utf8)
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
                perms.count == 4, let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4])
            else {
                throw ProcessError(.trace, "\(what): line \(number + 1) is not a mapping: \(line)")
            }
            result.append(
                Mapping(
                    start: start, end: end, readable: perms[0] == UInt8(ascii: "r"),
                    writable: perms[1] == UInt8(ascii: "w"), executable: perms[2] == UInt8(ascii: "x"),
                    shared: perms[3] == UInt8(ascii: "s"), offset: offset, inode: inode, path: path))
        }
        return MemoryMap(mappings: result)
    }

    /// The mapping that contains `address`.
    public func mapping(containing address: UInt64) -> Mapping? {
        var lo = 0
        var hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo < mappings.count && mappings[lo].contains(address) ? mappings[lo] : nil
    }

    /// Free address ranges `[start, end)` between mappings, within `window`.
    public func holes(in window: Range<UInt64>) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        var cursor = window.lowerBound
        for m in mappings {
            if m.end <= cursor { continue }
            if m.start >= window.upperBound { break }
            if m.start > cursor { result.append(cursor..<m.start) }
            cursor = max(cursor, m.end)
        }
        if cursor < window.upperBound { result.append(cursor..<window.upperBound) }
        return result
    }
}
