// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Why a store entry cannot be loaded.
struct StoreProblem: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// One installed patch as found in the store.
public struct StoreEntry: Sendable, Equatable {
    /// The module name, from the record's file name (or the module's).
    public var name: String
    /// The module's path in the store, when there is one.
    public var module: String?
    /// The record, when it could be read.
    public var patch: InstalledPatch?
    /// Why the entry cannot be loaded; nil when it is intact.
    public var problem: String?

    public init(name: String, module: String?, patch: InstalledPatch?, problem: String?) {
        self.name = name
        self.module = module
        self.patch = patch
        self.problem = problem
    }

    public var isIntact: Bool { problem == nil && patch != nil && module != nil }

    /// The stable shape of one installed patch: the record's fields (null
    /// when the record is unreadable), the module's path and the problem.
    public var json: JSON {
        .object([
            ("name", .string(name)),
            ("release", .optional(patch?.release)),
            ("sequence", patch.map { .integer($0.sequence) } ?? .null),
            ("installedAt", .optional(patch?.installedAt)),
            ("source", .optional(patch?.source)),
            ("module", .optional(module)),
            ("sha256", .optional(patch?.sha256)),
            ("size", patch.map { .integer($0.size) } ?? .null),
            ("replace", patch?.replace.map(JSON.bool) ?? .null),
            ("vermagic", .optional(patch?.vermagic)),
            ("description", .optional(patch?.description)),
            ("cves", .strings(patch?.cves ?? [])),
            ("signer", .optional(patch?.signer)),
            ("problem", .optional(problem)),
        ])
    }
}

/// The record of one installed patch, `NAME.json` in the release's folder.
public struct InstalledPatch: Sendable, Equatable {
    /// The record format this Suture writes and reads.
    public static let format = 1

    /// The module name, as the kernel knows it.
    public var name: String
    /// The kernel release it was installed for.
    public var release: String
    /// Its place in install order: 1 for the first, higher for later ones.
    public var sequence: Int
    /// ISO 8601 UTC time of the install.
    public var installedAt: String
    /// Absolute path of the file it was installed from.
    public var source: String
    /// The module's file name in the release's folder.
    public var moduleFile: String
    /// SHA-256 of the module file, hex.
    public var sha256: String
    /// The module file's size in bytes.
    public var size: Int
    /// Modinfo `suture.replace`, or nil when the module did not say.
    public var replace: Bool?
    /// Modinfo `vermagic`.
    public var vermagic: String?
    /// Modinfo `suture.description` and `suture.cve`: what the patch fixes.
    public var description: String?
    public var cves: [String] = []
    /// The signer of the stored file, as `modinfo` shows it; nil when unsigned.
    public var signer: String? = nil

    public init(
        name: String, release: String, sequence: Int, installedAt: String, source: String,
        moduleFile: String, sha256: String, size: Int, replace: Bool?, vermagic: String?
    ) {
        self.name = name
        self.release = release
        self.sequence = sequence
        self.installedAt = installedAt
        self.source = source
        self.moduleFile = moduleFile
        self.sha256 = sha256
        self.size = size
        self.replace = replace
        self.vermagic = vermagic
    }

    /// The record as stored.
    public var json: JSON {
        .object([
            ("format", .integer(Self.format)),
            ("name", .string(name)),
            ("release", .string(release)),
            ("sequence", .integer(sequence)),
            ("installedAt", .string(installedAt)),
            ("source", .string(source)),
            ("moduleFile", .string(moduleFile)),
            ("sha256", .string(sha256)),
            ("size", .integer(size)),
            ("replace", replace.map(JSON.bool) ?? .null),
            ("vermagic", .optional(vermagic)),
            ("description", .optional(description)),
            ("cves", .strings(cves)),
            ("signer", .optional(signer)),
        ])
    }

    /// Reads a stored record; the error completes "the record PATH …".
    init(json: JSON) throws(StoreProblem) {
        guard json.objectValue != nil else { throw StoreProblem("is not a JSON object") }
        guard let format = json["format"]?.intValue else { throw StoreProblem("has no format") }
        guard format <= Self.format else {
            throw StoreProblem("has format \(format), newer than this suture reads (\(Self.format))")
        }
        func string(_ key: String) throws(StoreProblem) -> String {
            guard let value = json[key]?.stringValue, !value.isEmpty else { throw StoreProblem("has no \(key)") }
            return value
        }
        func integer(_ key: String) throws(StoreProblem) -> Int {
            guard let value = json[key]?.intValue, value >= 0 else { throw StoreProblem("has no \(key)") }
            return Int(value)
        }
        let sha256 = try string("sha256")
        guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw StoreProblem("has no valid sha256")
        }
        let moduleFile = try string("moduleFile")
        guard !moduleFile.contains("/"), !moduleFile.hasPrefix(".") else {
            throw StoreProblem("names a module file outside its folder: \(moduleFile)")
        }
        self.init(
            name: try string("name"), release: try string("release"), sequence: try integer("sequence"),
            installedAt: try string("installedAt"), source: try string("source"), moduleFile: moduleFile,
            sha256: sha256, size: try integer("size"), replace: json["replace"]?.boolValue,
            vermagic: json["vermagic"]?.stringValue)
        description = json["description"]?.stringValue
        cves = json["cves"]?.arrayValue?.compactMap(\.stringValue) ?? []
        signer = json["signer"]?.stringValue
    }
}
