// SPDX-License-Identifier: GPL-2.0-only

/// The module graph of one kernel release, read from `modules.dep` as
/// depmod writes it: one line per module, `path: dependency-path ...`,
/// paths relative to `/lib/modules/RELEASE`.
///
/// Soft dependencies (`modules.softdep`: `softdep NAME pre: A post: B`)
/// count too, with names resolved through `modules.alias`: `libcrc32c`
/// is useless without a `crc32c` provider, which it only requests at init
/// time.
public struct ModuleDependencies: Sendable {
    public struct Module: Equatable, Sendable {
        /// The module name as the kernel knows it, with `_` for `-`.
        public let name: String
        /// The file, relative to the modules directory; may end in
        /// `.ko.xz`, `.ko.zst` or `.ko.gz`.
        public let path: String
        /// Paths of the modules this one needs, as listed.
        public let dependencies: [String]
    }

    private var byName: [String: Module] = [:]
    private var byPath: [String: Module] = [:]
    /// Module name → the names in its softdep lines (modules or aliases).
    private var softDependencies: [String: [String]] = [:]
    /// Alias without wildcards → module names.
    private var aliases: [String: [String]] = [:]

    /// Parses `modules.dep`, and optionally `modules.softdep` and
    /// `modules.alias`, text. Lines of another shape are ignored, as
    /// modprobe ignores them.
    public init(modulesDep text: String, softdep: String = "", alias: String = "") {
        self.init(modulesDep: text)
        for line in softdep.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count >= 3, words[0] == "softdep" else { continue }
            let names = words.dropFirst(2).filter { !$0.hasSuffix(":") }.map(String.init)
            softDependencies[ModuleDependencies.normalized(String(words[1])), default: []] += names
        }
        for line in alias.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count == 3, words[0] == "alias", !words[1].contains("*") else { continue }
            aliases[String(words[1]), default: []].append(ModuleDependencies.normalized(String(words[2])))
        }
    }

    /// Parses `modules.dep` text alone.
    public init(modulesDep text: String) {
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon]).trimmingWhitespace()
            guard !path.isEmpty else { continue }
            let dependencies = line[line.index(after: colon)...]
                .split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let module = Module(
                name: ModuleDependencies.moduleName(ofPath: path), path: path,
                dependencies: dependencies)
            byName[module.name] = module
            byPath[path] = module
        }
    }

    public var count: Int { byName.count }

    /// The module called `name` (`-` and `_` are the same, as for modprobe).
    public func module(named name: String) -> Module? {
        byName[ModuleDependencies.normalized(name)]
    }

    /// The named modules and everything they depend on, each once,
    /// dependencies before the modules that need them.
    public func closure(of names: [String]) throws(VMError) -> [Module] {
        var result: [Module] = []
        var seen: Set<String> = []
        func visit(_ module: Module, chain: [String]) throws(VMError) {
            if seen.contains(module.path) { return }
            if chain.contains(module.path) {
                throw VMError(
                    .badInput,
                    "modules.dep has a dependency cycle: \((chain + [module.path]).joined(separator: " -> "))")
            }
            for path in module.dependencies {
                guard let dependency = byPath[path] else {
                    throw VMError(
                        .badInput, "modules.dep: \(module.path) depends on \(path), which has no entry of its own")
                }
                try visit(dependency, chain: chain + [module.path])
            }
            // Soft dependencies that name nothing installed are skipped,
            // as modprobe skips them.
            for name in softDependencies[module.name] ?? [] {
                for provider in providers(of: name) where !chain.contains(provider.path) && provider.path != module.path
                {
                    try visit(provider, chain: chain + [module.path])
                }
            }
            seen.insert(module.path)
            result.append(module)
        }
        for name in names {
            guard let module = module(named: name) else {
                throw VMError(.badInput, "no module \(name) in modules.dep")
            }
            try visit(module, chain: [])
        }
        return result
    }

    /// The modules a softdep name stands for: the module of that name, or
    /// every module that has it as an alias.
    private func providers(of name: String) -> [Module] {
        if let module = module(named: name) { return [module] }
        return (aliases[name] ?? []).compactMap { byName[$0] }
    }

    /// `kernel/fs/xfs/xfs.ko.zst` → `xfs`; `snd-hda-intel.ko` → `snd_hda_intel`.
    public static func moduleName(ofPath path: String) -> String {
        var base = Substring(uncompressedPath(path))
        if let slash = base.lastIndex(of: "/") { base = base[base.index(after: slash)...] }
        if base.hasSuffix(".ko") { base = base.dropLast(3) }
        return normalized(String(base))
    }

    static func normalized(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }

    /// The compression of a module file, from its name.
    public enum Compression: String, Sendable {
        case none, xz, zstd, gzip

        public init(path: String) {
            if path.hasSuffix(".ko.xz") {
                self = .xz
            } else if path.hasSuffix(".ko.zst") {
                self = .zstd
            } else if path.hasSuffix(".ko.gz") {
                self = .gzip
            } else {
                self = .none
            }
        }

        /// The command that writes the decompressed file to stdout.
        public var decompressor: [String]? {
            switch self {
            case .none: return nil
            case .xz: return ["xz", "-dc"]
            case .zstd: return ["zstd", "-dcq"]
            case .gzip: return ["gzip", "-dc"]
            }
        }
    }

    /// The path with a compression suffix removed: `a/b.ko.zst` → `a/b.ko`.
    public static func uncompressedPath(_ path: String) -> String {
        for suffix in [".xz", ".zst", ".gz"] where path.hasSuffix(".ko" + suffix) {
            return String(path.dropLast(suffix.count))
        }
        return path
    }
}
