// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// Suture's modinfo keys for what a patch fixes and what it changes,
/// written by `suture build`.
public enum SutureModinfo {
    public static let release = "suture.release"
    public static let diff = "suture.diff"
    public static let description = "suture.description"
    public static let cve = "suture.cve"
    /// `OBJECT:FUNCTION,SYMPOS`, one per patched function.
    public static let function = "suture.function"

    /// The CVEs in `modinfo`, once each, by year and number: the linker does
    /// not keep the order of modinfo entries.
    public static func cves(_ modinfo: [(key: String, value: String)]) -> [String] {
        sorted(modinfo.filter { $0.key == cve }.map(\.value))
    }

    /// CVE IDs once each, by year and number.
    public static func sorted(_ ids: [String]) -> [String] {
        func key(_ id: String) -> (Int, Int, String) {
            let parts = id.split(separator: "-")
            guard parts.count == 3, let year = Int(parts[1]), let number = Int(parts[2]) else { return (0, 0, id) }
            return (year, number, id)
        }
        return Set(ids).sorted { key($0) < key($1) }
    }

    /// A CVE identifier as MITRE spells it: `CVE-YYYY-NNNN`, four or more digits.
    public static func isCVE(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "CVE", parts[1].count == 4, parts[2].count >= 4 else { return false }
        return parts[1].allSatisfy { $0.isASCII && $0.isNumber } && parts[2].allSatisfy { $0.isASCII && $0.isNumber }
    }
}

/// Everything a livepatch module file carries, as `suture info` shows it.
public struct PatchInfo: Sendable {
    public struct Function: Sendable, Equatable {
        public var object: String
        public var name: String
        public var sympos: Int
    }

    public var file: String
    public var name: String
    public var isLivepatch: Bool
    /// The release `suture build` targeted, else vermagic's.
    public var release: String?
    public var vermagic: String?
    /// `NAME:sha256:DIGEST` per input diff.
    public var diffs: [String]
    public var functions: [Function]
    /// The objects the patch has klp relocations for (`.klp.rela.OBJECT.*`)
    /// or functions in, in order of first mention.
    public var klpObjects: [String]
    /// The key that signed the appended signature, when the module is signed
    /// and the signature names it.
    public var signer: String?
    public var signed: Bool
    public var description: String?
    public var cves: [String]
    public var replace: Bool?
    public var sha256: String

    /// Reads `path` (also `.ko.xz`, `.ko.zst`).
    public static func read(_ path: String) throws(LivepatchError) -> PatchInfo {
        let module = try ModuleFile.inspect(path)
        func all(_ key: String) -> [String] { module.modinfo.filter { $0.key == key }.map(\.value) }
        let functions = all(SutureModinfo.function).compactMap(Self.function).sorted {
            ($0.object, $0.name, $0.sympos) < ($1.object, $1.name, $1.sympos)
        }
        var objects: [String] = []
        for section in module.image.elf.sections where section.name.hasPrefix(".klp.rela.") {
            let rest = section.name.dropFirst(".klp.rela.".count)
            if let dot = rest.firstIndex(of: "."), !objects.contains(String(rest[..<dot])) {
                objects.append(String(rest[..<dot]))
            }
        }
        for function in functions where !objects.contains(function.object) { objects.append(function.object) }
        let signature = module.signature
        return PatchInfo(
            file: path, name: module.name, isLivepatch: module.isLivepatch,
            release: all(SutureModinfo.release).first ?? module.vermagicRelease, vermagic: module.vermagic,
            diffs: all(SutureModinfo.diff), functions: functions, klpObjects: objects,
            signer: signature?.signer, signed: signature != nil,
            description: all(SutureModinfo.description).first, cves: SutureModinfo.cves(module.modinfo),
            replace: module.replace, sha256: SHA256.hex(module.image.fileBytes))
    }

    static func function(_ text: String) -> Function? {
        guard let colon = text.firstIndex(of: ":"), let comma = text.lastIndex(of: ","), colon < comma,
            let sympos = Int(text[text.index(after: comma)...])
        else { return nil }
        return Function(
            object: String(text[..<colon]), name: String(text[text.index(after: colon)..<comma]), sympos: sympos)
    }

    public var json: JSON {
        .object([
            ("file", .string(file)),
            ("name", .string(name)),
            ("livepatch", .bool(isLivepatch)),
            ("release", .optional(release)),
            ("vermagic", .optional(vermagic)),
            ("sha256", .string(sha256)),
            ("diffs", .strings(diffs)),
            (
                "functions",
                .array(
                    functions.map {
                        .object([
                            ("object", .string($0.object)), ("name", .string($0.name)), ("sympos", .integer($0.sympos)),
                        ])
                    })
            ),
            ("klpObjects", .strings(klpObjects)),
            ("signed", .bool(signed)),
            ("signer", .optional(signer)),
            ("description", .optional(description)),
            ("cves", .strings(cves)),
            ("replace", replace.map(JSON.bool) ?? .null),
        ])
    }

    public var text: String {
        var lines = ["\(name): \(file)"]
        lines.append("  livepatch: \(isLivepatch ? "yes" : "no (an ordinary kernel module)")")
        lines.append("  release: \(release ?? "unknown")")
        if let vermagic { lines.append("  vermagic: \(vermagic.trimmingWhitespace())") }
        lines.append("  sha256: \(sha256)")
        lines.append("  description: \(description ?? "none")")
        lines.append("  cves: \(cves.isEmpty ? "none" : cves.joined(separator: ", "))")
        lines.append("  replace: " + (replace.map { $0 ? "yes" : "no" } ?? "unknown"))
        lines.append("  signer: " + (signed ? signer ?? "signed (signer not named)" : "unsigned"))
        for diff in diffs { lines.append("  diff: \(diff)") }
        lines.append("  klp objects: \(klpObjects.isEmpty ? "none recorded" : klpObjects.joined(separator: ", "))")
        if functions.isEmpty { lines.append("  functions: none recorded (not built by suture build)") }
        for function in functions {
            lines.append("  function: \(function.object): \(function.name),\(function.sympos)")
        }
        return lines.map { Printable.terminalSafe($0) }.joined(separator: "\n") + "\n"
    }
}
