// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// A parsed `/proc/kallsyms`: every symbol in the kernel's own order, which
/// is the order the livepatch core counts symbol positions (sympos) in.
public struct KallsymsTable: Sendable {
    public struct Entry: Sendable {
        public let address: UInt64
        /// `nm`-style type letter: upper case is global, lower case local.
        public let type: UInt8
        public let name: String
        /// The module, or nil for vmlinux.
        public let module: String?

        public var isGlobal: Bool { type >= 65 && type <= 90 }
    }

    public let entries: [Entry]
    /// (module or "", name) → entry indexes in order.
    private let byName: [Key: [Int]]

    struct Key: Hashable {
        let module: String
        let name: String
    }

    /// Parses kallsyms text (`ADDRESS TYPE NAME [MODULE]` per line).
    public init(text: [UInt8], source: String = "kallsyms") throws(KernelError) {
        var entries: [Entry] = []
        entries.reserveCapacity(text.count / 40)
        var byName: [Key: [Int]] = [:]
        var lineNumber = 0
        var start = 0
        while start < text.count {
            var end = start
            while end < text.count && text[end] != 10 { end += 1 }
            lineNumber += 1
            let line = text[start..<end]
            start = end + 1
            if line.isEmpty { continue }
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard fields.count >= 3, fields[1].count == 1,
                let address = UInt64(String(decoding: fields[0], as: UTF8.self), radix: 16)
            else {
                throw KernelError(
                    .missingPiece,
                    "\(source): line \(lineNumber) is not a kallsyms line: \(String(decoding: line.prefix(80), as: UTF8.self))"
                )
            }
            var module: String?
            if fields.count >= 4 {
                var m = fields[3]
                if m.first == UInt8(ascii: "[") { m = m.dropFirst() }
                if m.last == UInt8(ascii: "]") { m = m.dropLast() }
                module = String(decoding: m, as: UTF8.self)
            }
            let name = String(decoding: fields[2], as: UTF8.self)
            byName[Key(module: module ?? "", name: name), default: []].append(entries.count)
            entries.append(Entry(address: address, type: fields[1].first!, name: name, module: module))
        }
        guard !entries.isEmpty else { throw KernelError(.missingPiece, "\(source): no symbols") }
        self.entries = entries
        self.byName = byName
    }

    /// The entries named `name` in `module` (nil: vmlinux), in kallsyms order.
    public func occurrences(of name: String, in module: String? = nil) -> [Int] {
        byName[Key(module: module ?? "", name: name)] ?? []
    }

    /// Whether any vmlinux symbol has a non-zero address (root's view).
    public var hasAddresses: Bool { entries.prefix(2000).contains { $0.address != 0 } }
}

/// The symbols the kernel and its modules export, from the headers'
/// `Module.symvers`: a reference to one of these resolves at module load.
public struct ExportedSymbols: Sendable {
    public struct Export: Sendable {
        /// `vmlinux` or the module's path without `.ko` (e.g. `fs/xfs/xfs`).
        public let owner: String
        public let namespace: String?
        public let gplOnly: Bool

        public init(owner: String, namespace: String? = nil, gplOnly: Bool = false) {
            self.owner = owner
            self.namespace = namespace
            self.gplOnly = gplOnly
        }
    }

    public let symbols: [String: Export]

    public init(symvers path: String) throws(KernelError) {
        guard let text = FileSystem.readTextIfPresent(path) else {
            throw KernelError(.missingPiece, "cannot read \(path); the headers of the target kernel are needed")
        }
        var symbols: [String: Export] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 4 else { continue }
            let namespace = fields.count >= 5 && !fields[4].isEmpty ? String(fields[4]) : nil
            symbols[String(fields[1])] = Export(
                owner: String(fields[2]), namespace: namespace,
                gplOnly: fields[3].hasSuffix("_GPL"))
        }
        self.symbols = symbols
    }

    public init(symbols: [String: Export]) {
        self.symbols = symbols
    }

    public subscript(name: String) -> Export? { symbols[name] }
}
