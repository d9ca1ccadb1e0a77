// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// GNU readelf's view of a file, parsed from `readelf -SsrW`, as the
/// reference the ELF library is checked against.
struct ReadelfView {
    struct Section: Equatable {
        var index: Int, name: String, type: String, address: UInt64, offset: UInt64, size: UInt64
        var entrySize: UInt64, flags: String, link: UInt32, info: UInt32, alignment: UInt64
    }
    struct Symbol: Equatable {
        var index: Int, value: UInt64, size: UInt64, type: String, bind: String, visibility: String
        var section: String, name: String
    }
    struct Relocation: Equatable {
        var section: String, offset: UInt64, symbolIndex: UInt32, typeNumber: UInt32, type: String
        var symbol: String?, addend: Int64
    }

    var sections: [Section] = []
    var symbols: [String: [Symbol]] = [:]  // by table name
    var relocations: [Relocation] = []
    var warnings: [String] = []

    static func load(_ path: String) throws -> ReadelfView {
        let result = try Command.run(["readelf", "-SsrW", path])
        guard result.termination.succeeded else {
            throw PlatformError(.childFailed, "readelf failed on \(path): \(result.stderrText)")
        }
        var view = ReadelfView(text: result.stdoutText)
        view.warnings = result.stderrText.split(separator: "\n").map(String.init)
        return view
    }

    init(text: String) {
        enum Part {
            case none, sections
            case symbols(String)
            case relocations(String, dynamic: Bool)
        }
        var part = Part.none
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let s = String(line)
            if s.hasPrefix("Section Headers:") {
                part = .sections
                continue
            }
            if s.hasPrefix("Symbol table '") {
                let name = s.dropFirst("Symbol table '".count).prefix { $0 != "'" }
                part = .symbols(String(name))
                continue
            }
            if s.hasPrefix("Relocation section '") {
                let name = String(s.dropFirst("Relocation section '".count).prefix { $0 != "'" })
                part = .relocations(name, dynamic: false)
                continue
            }
            if s.isEmpty || s.hasPrefix("Key to Flags") {
                if case .sections = part { part = .none }
                continue
            }
            switch part {
            case .none: continue
            case .sections:
                guard s.hasPrefix("  ["), let close = s.firstIndex(of: "]") else { continue }
                let number = String(s[s.index(s.startIndex, offsetBy: 3)..<close]).trimmingWhitespace()
                guard let index = Int(number) else { continue }
                var tokens = s[s.index(after: close)...].split(separator: " ").map(String.init)
                let alignment = UInt64(tokens.removeLast())!
                let info = UInt32(tokens.removeLast())!
                let link = UInt32(tokens.removeLast())!
                let flagSet = Set("WAXMSILOGTCxoEDlp")
                var flags = ""
                if let last = tokens.last, last.allSatisfy({ flagSet.contains($0) }) { flags = tokens.removeLast() }
                let entrySize = UInt64(tokens.removeLast(), radix: 16)!
                let size = UInt64(tokens.removeLast(), radix: 16)!
                let offset = UInt64(tokens.removeLast(), radix: 16)!
                let address = UInt64(tokens.removeLast(), radix: 16)!
                // Index 0 has an empty name; otherwise the first token is the name.
                let name = index == 0 ? "" : tokens.removeFirst()
                let type = tokens.joined(separator: " ")
                sections.append(
                    Section(
                        index: index, name: name, type: type, address: address, offset: offset,
                        size: size, entrySize: entrySize, flags: flags, link: link, info: info,
                        alignment: alignment))
            case .symbols(let table):
                let trimmed = s.trimmingWhitespace()
                guard let colon = trimmed.firstIndex(of: ":"), let index = Int(trimmed[..<colon]) else { continue }
                // Fixed columns after "Num:": value size type bind vis ndx name
                let rest = trimmed[trimmed.index(after: colon)...]
                var tokens = rest.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                let value = UInt64(tokens.removeFirst(), radix: 16)!
                let sizeText = tokens.removeFirst()
                let size = sizeText.hasPrefix("0x") ? UInt64(sizeText.dropFirst(2), radix: 16)! : UInt64(sizeText)!
                let type = tokens.removeFirst()
                let bind = tokens.removeFirst()
                let vis = tokens.removeFirst()
                var ndx = tokens.removeFirst()
                if ndx == "OS" || ndx == "PRC" || ndx == "RSV" { ndx += " " + tokens.removeFirst() }
                var name = tokens.joined(separator: " ")
                if table == ".dynsym", let at = name.firstIndex(of: "@") { name = String(name[..<at]) }
                symbols[table, default: []].append(
                    Symbol(
                        index: index, value: value, size: size, type: type, bind: bind,
                        visibility: vis, section: ndx, name: name))
            case .relocations(let section, _):
                var tokens = s.split(separator: " ").map(String.init)
                guard tokens.count >= 3, let offset = UInt64(tokens[0], radix: 16),
                    let info = UInt64(tokens[1], radix: 16)
                else { continue }
                tokens.removeFirst(3)
                let type = String(s.split(separator: " ")[2])
                let symbolIndex = UInt32(truncatingIfNeeded: info >> 32)
                var addend: Int64 = 0
                var symbol: String? = nil
                if symbolIndex == 0 {
                    if let last = tokens.last, let v = UInt64(last, radix: 16) { addend = Int64(bitPattern: v) }
                } else {
                    tokens.removeFirst()  // symbol value
                    if tokens.count >= 2, tokens[tokens.count - 2] == "+" || tokens[tokens.count - 2] == "-" {
                        let magnitude = UInt64(tokens.removeLast(), radix: 16)!
                        let sign = tokens.removeLast()
                        addend = sign == "-" ? Int64(bitPattern: 0 &- magnitude) : Int64(bitPattern: magnitude)
                    }
                    var name = tokens.joined(separator: " ")
                    if let at = name.firstIndex(of: "@"),
                        section.hasPrefix(".rela.dyn") || section.hasPrefix(".rela.plt")
                    {
                        name = String(name[..<at])
                    }
                    symbol = name
                }
                relocations.append(
                    Relocation(
                        section: section, offset: offset, symbolIndex: symbolIndex,
                        typeNumber: UInt32(truncatingIfNeeded: info), type: type,
                        symbol: symbol, addend: addend))
            }
        }
    }
}
