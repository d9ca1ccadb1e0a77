// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Where kbuild puts an object under the tree's configuration: into
/// vmlinux, into a module (and which), or nowhere.
///
/// Read from the kbuild Makefiles of the object's folder and its parents:
/// `obj-$(CONFIG_X) += name.o`, composite objects (`xfs-y += xfs_ag.o`,
/// `$(addprefix libxfs/, …)`), and the folder's own entry in its parent
/// (`obj-$(CONFIG_XFS_FS) += xfs/`). Conditionals inside Makefiles are not
/// evaluated; where the Makefiles say nothing, the answer is `unknown`.
public enum KbuildMembership: Sendable, Equatable {
    case builtIn
    case module(String)
    /// The governing option is not set.
    case notBuilt(option: String)
    case unknown

    public static func of(_ object: String, tree sourceDirectory: String, config: KernelConfig) -> KbuildMembership {
        let dir = Path.directory(of: object)
        let name = Path.base(of: object)
        // Objects of subfolders may be listed from above (`libxfs/xfs_ag.o`
        // in fs/xfs/Makefile).
        var found: State?
        var folder = dir == "." ? "" : dir
        var relative = name
        for _ in 0..<3 {
            if let s = state(of: relative, in: folder, root: sourceDirectory, config: config, depth: 0) {
                found = s
                break
            }
            guard !folder.isEmpty else { break }
            relative = Path.base(of: folder) + "/" + relative
            let parent = Path.directory(of: folder)
            folder = parent == "." ? "" : parent
        }
        guard let state = found else { return .unknown }
        switch state.value {
        case .no: return .notBuilt(option: state.option ?? "?")
        case .module: return .module(state.module ?? String(name.dropLast(2)).replacingDashes())
        default: return .builtIn
        }
    }

    struct State {
        var value: ConfigValue
        var option: String?
        var module: String?
    }

    /// Assignments of one kbuild Makefile: left-hand side → words.
    ///
    /// With `config`, assignments inside a conditional on an option that
    /// the configuration does not meet are blocked by that option:
    /// `ifeq ($(CONFIG_X),y)`,
    /// `ifneq ($(CONFIG_X),)`, `ifdef CONFIG_X`, `ifndef CONFIG_X` and their
    /// `else`. Other conditions count as met.
    static func assignments(in dir: String, root: String, config: KernelConfig? = nil) -> [(
        lhs: String, words: [String], blockedBy: String?
    )] {
        var result: [(String, [String], String?)] = []
        for file in ["Kbuild", "Makefile"] {
            guard let text = FileSystem.readTextIfPresent(Path.join(root, dir, file)) else { continue }
            var logical: [String] = []
            var current = ""
            for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
                var line = String(raw)
                if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
                if line.hasSuffix("\\") {
                    current += line.dropLast() + " "
                } else {
                    logical.append(current + line)
                    current = ""
                }
            }
            // Each open conditional: whether its current branch is taken,
            // and its option.
            var taken: [(Bool, String?)] = []
            for line in logical {
                let trimmed = line.trimmingWhitespace()
                let keyword = trimmed.prefix { $0 != " " && $0 != "\t" && $0 != "(" }
                switch keyword {
                case "ifeq", "ifneq", "ifdef", "ifndef":
                    taken.append(config.map { Self.condition(trimmed, config: $0) } ?? (true, nil))
                    continue
                case "else":
                    if let last = taken.popLast() { taken.append((!last.0, last.1)) }
                    continue
                case "endif":
                    _ = taken.popLast()
                    continue
                default:
                    break
                }
                let blockedBy = taken.first { !$0.0 }.map { $0.1 ?? "?" }
                guard let op = line.firstRange(of: "+=") ?? line.firstRange(of: ":=") ?? line.firstRange(of: "=") else {
                    continue
                }
                let lhs = String(line[..<op.lowerBound]).trimmingWhitespace()
                var rhs = String(line[op.upperBound...])
                var words: [String] = []
                // $(addprefix P, a b c) → Pa Pb Pc
                while let start = rhs.firstRange(of: "$(addprefix ") {
                    guard let close = rhs[start.upperBound...].firstIndex(of: ")") else { break }
                    let inner = rhs[start.upperBound..<close]
                    if let comma = inner.firstIndex(of: ",") {
                        let prefix = String(inner[..<comma]).trimmingWhitespace()
                        for w in inner[inner.index(after: comma)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
                        {
                            words.append(prefix + w)
                        }
                    }
                    rhs.replaceSubrange(start.lowerBound...close, with: " ")
                }
                words += rhs.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if !lhs.isEmpty { result.append((lhs, words, blockedBy)) }
            }
        }
        return result
    }

    /// Whether a Makefile conditional on one option holds; true when it is
    /// not of a form read here.
    static func condition(_ line: String, config: KernelConfig) -> (holds: Bool, option: String?) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let keyword = words.first else { return (true, nil) }
        if keyword == "ifdef" || keyword == "ifndef" {
            guard words.count == 2, words[1].hasPrefix("CONFIG_") else { return (true, nil) }
            let set = config[words[1]] != .no
            return (keyword == "ifdef" ? set : !set, words[1])
        }
        // ifeq ($(CONFIG_X),y) / ifneq ($(CONFIG_X),) and the like.
        let rest = line.dropFirst(keyword.count).filter { $0 != " " && $0 != "\t" }
        guard rest.hasPrefix("($(CONFIG_"), rest.hasSuffix(")"), let comma = rest.firstIndex(of: ",") else {
            return (true, nil)
        }
        let left = rest[rest.index(rest.startIndex, offsetBy: 3)..<comma]
        guard left.hasSuffix(")") else { return (true, nil) }
        let option = String(left.dropLast())
        let right = String(rest[rest.index(after: comma)...].dropLast())
        guard right.isEmpty || right == "y" || right == "m" else { return (true, nil) }
        let value = config[option]
        let actual = value == .yes ? "y" : value == .module ? "m" : value == .no ? "" : "?"
        guard actual != "?" else { return (true, nil) }
        let equal = actual == right
        return (keyword == "ifeq" ? equal : keyword == "ifneq" ? !equal : true, option)
    }

    /// The value of `obj-…`/`name-…` suffixes: `y`, `m`, `objs`, `$(CONFIG_X)`.
    static func value(of suffix: Substring, config: KernelConfig) -> (ConfigValue, String?)? {
        if suffix == "y" || suffix == "objs" { return (.yes, nil) }
        if suffix == "m" { return (.module, nil) }
        if suffix.hasPrefix("$(CONFIG_"), suffix.hasSuffix(")") {
            let option = String(suffix.dropFirst(2).dropLast())
            return (config[option], option)
        }
        return nil
    }

    static func state(of name: String, in dir: String, root: String, config: KernelConfig, depth: Int) -> State? {
        guard depth < 8 else { return nil }
        var best: State?
        func consider(_ s: State) {
            if let b = best, rank(b.value) >= rank(s.value) { return }
            best = s
        }
        for (lhs, words, blockedBy) in assignments(in: dir, root: root, config: config) where words.contains(name) {
            guard let dash = lhs.lastIndex(of: "-") else { continue }
            if let blockedBy {
                consider(State(value: .no, option: blockedBy))
                continue
            }
            let owner = lhs[..<dash]
            guard let (value, option) = value(of: lhs[lhs.index(after: dash)...], config: config) else { continue }
            if owner == "obj" {
                consider(
                    State(
                        value: value, option: option,
                        module: value == .module ? String(Path.base(of: name).dropLast(2)).replacingDashes() : nil))
            } else if let composite = state(of: "\(owner).o", in: dir, root: root, config: config, depth: depth + 1) {
                var s = composite
                if rank(value) < rank(s.value) {
                    s.value = value
                    s.option = option ?? s.option
                }
                if s.value == .module { s.module = String(owner).replacingDashes() }
                consider(s)
            }
        }
        guard var state = best else { return nil }
        // The folder itself must be built: its entry in the parent folder.
        if !dir.isEmpty, state.value != .no {
            let parent = Path.directory(of: dir)
            let parentDir = parent == "." ? "" : parent
            if let folder = self.state(
                of: Path.base(of: dir) + "/", in: parentDir, root: root, config: config, depth: depth + 1)
            {
                if folder.value == .no { return folder }
                if folder.value == .module && state.value == .yes { state.value = .module }
            }
        }
        return state
    }

    static func rank(_ value: ConfigValue) -> Int {
        switch value {
        case .yes: return 3
        case .module: return 2
        case .value: return 1
        case .no: return 0
        }
    }
}

extension String {
    /// The kernel's module name for a file name: `-` becomes `_`.
    public func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
