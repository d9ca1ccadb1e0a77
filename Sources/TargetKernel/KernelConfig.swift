// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The value of one Kconfig symbol.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    /// `=y`: built into the kernel image.
    case yes
    /// `=m`: built as a module.
    case module
    /// `# CONFIG_X is not set`, or absent.
    case no
    /// Any other value: a string (without its quotes) or a number.
    case value(String)

    public var description: String {
        switch self {
        case .yes: return "y"
        case .module: return "m"
        case .no: return "n"
        case .value(let v): return v
        }
    }

    /// `=y` or `=m`.
    public var isEnabled: Bool { self == .yes || self == .module }
}

/// A parsed kernel `.config`, as `scripts/kconfig` writes it.
public struct KernelConfig: Sendable, Equatable {
    /// Symbol name without the `CONFIG_` prefix → value, for every symbol
    /// that is set or explicitly "not set".
    public let values: [String: ConfigValue]

    public init(text: String) {
        var values: [String: ConfigValue] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("CONFIG_"), let eq = line.firstIndex(of: "=") {
                let name = String(line[line.index(line.startIndex, offsetBy: 7)..<eq])
                var raw = line[line.index(after: eq)...]
                switch raw {
                case "y": values[name] = .yes
                case "m": values[name] = .module
                case "n": values[name] = .no
                default:
                    if raw.count >= 2 && raw.first == "\"" && raw.last == "\"" {
                        raw = raw.dropFirst().dropLast()
                    }
                    values[name] = .value(String(raw))
                }
            } else if line.hasPrefix("# CONFIG_") && line.hasSuffix(" is not set") {
                let name = line.dropFirst(9).dropLast(11)
                values[String(name)] = .no
            }
        }
        self.values = values
    }

    /// Reads a config file.
    public init(path: String) throws(KernelError) {
        guard let text = FileSystem.readTextIfPresent(path) else {
            throw KernelError(.missingPiece, "cannot read the kernel config \(path)")
        }
        self.init(text: text)
    }

    /// The value of a symbol, named with or without `CONFIG_`; absent symbols are `.no`.
    public subscript(_ name: String) -> ConfigValue {
        let key = name.hasPrefix("CONFIG_") ? String(name.dropFirst(7)) : name
        return values[key] ?? .no
    }

    /// Symbols whose value in `other` differs from this config, ignoring
    /// symbols that only `other` sets (Kconfig adds defaults for those).
    /// Each entry is `(name, value here, value in other)`.
    public func drift(to other: KernelConfig) -> [(name: String, expected: ConfigValue, actual: ConfigValue)] {
        values.keys.sorted().compactMap { name in
            let mine = values[name] ?? .no
            let theirs = other[name]
            return mine == theirs ? nil : (name, mine, theirs)
        }
    }
}
