// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// What Suture remembers about a module it loaded, in
/// `/run/suture/loaded/NAME.json`: the file, its digest, and the replace
/// flag, which a 6.1 kernel does not show in sysfs.
///
/// The folder is on tmpfs and so forgets with the kernel. A record whose
/// module size no longer matches `/proc/modules` describes an earlier load
/// of the same name (by insmod, say) and is ignored.
public struct LoadRecord: Sendable, Equatable {
    public var name: String
    /// Absolute path of the file that was loaded.
    public var file: String
    /// SHA-256 of the file, to tell it from an installed copy.
    public var sha256: String
    /// Modinfo `suture.replace`, or nil when the module did not say.
    public var replace: Bool?
    /// ISO 8601 UTC time of the load.
    public var loadedAt: String
    /// The module's size in `/proc/modules` right after the load.
    public var moduleSize: Int

    public init(name: String, file: String, sha256: String, replace: Bool?, loadedAt: String, moduleSize: Int) {
        self.name = name
        self.file = file
        self.sha256 = sha256
        self.replace = replace
        self.loadedAt = loadedAt
        self.moduleSize = moduleSize
    }

    public var json: JSON {
        .object([
            ("name", .string(name)),
            ("file", .string(file)),
            ("sha256", .string(sha256)),
            ("replace", replace.map(JSON.bool) ?? .null),
            ("loadedAt", .string(loadedAt)),
            ("moduleSize", .integer(moduleSize)),
        ])
    }

    public init?(json: JSON) {
        guard let name = json["name"]?.stringValue, let file = json["file"]?.stringValue,
              let sha256 = json["sha256"]?.stringValue, let loadedAt = json["loadedAt"]?.stringValue,
              let size = json["moduleSize"]?.intValue else { return nil }
        self.init(name: name, file: file, sha256: sha256, replace: json["replace"]?.boolValue,
                  loadedAt: loadedAt, moduleSize: Int(size))
    }

    static func path(_ tree: KernelTree, _ name: String) -> String {
        Path.join(tree.records, name + ".json")
    }

    /// The record of `module` if it describes this load of it.
    public static func read(_ tree: KernelTree, for module: LoadedModule) -> LoadRecord? {
        guard let bytes = try? FileSystem.read(path(tree, module.name)),
              let json = try? JSON.parse(bytes),
              let record = LoadRecord(json: json),
              record.name == module.name, record.moduleSize == module.size else { return nil }
        return record
    }

    public func write(_ tree: KernelTree) throws(PlatformError) {
        try FileSystem.makeDirectories(tree.records)
        try FileSystem.writeAtomically(Self.path(tree, name), Array((json.serialized(pretty: true) + "\n").utf8))
    }

    public static func remove(_ tree: KernelTree, _ name: String) {
        try? FileSystem.removeFile(path(tree, name))
    }
}
