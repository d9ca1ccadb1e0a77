// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// What Suture remembers about a module it loaded, in
/// `/run/suture/loaded/NAME.json`: the file and its identity at load time,
/// and the replace flag, which a 6.1 kernel does not show in sysfs.
///
/// The folder is on tmpfs and so forgets with the kernel. A record whose
/// module size no longer matches `/proc/modules` describes an earlier load
/// of the same name (by insmod, say) and is ignored.
public struct LoadRecord: Sendable, Equatable {
    public var name: String
    /// Absolute path of the file that was loaded.
    public var file: String
    /// The file as it was when loaded. Its digest is not taken at load
    /// time (it costs more than the rest of a load under TCG); see
    /// `fileDigestIfUnchanged()`.
    public var identity: FileIdentity
    /// Modinfo `suture.replace`, or nil when the module did not say.
    public var replace: Bool?
    /// ISO 8601 UTC time of the load.
    public var loadedAt: String
    /// The module's size in `/proc/modules` right after the load.
    public var moduleSize: Int
    /// What `suture build` recorded in modinfo: the kernel release the
    /// patch was built for, and each input diff (`NAME:sha256:DIGEST`).
    public var builtFor: String?
    public var diffs: [String] = []
    /// What the patch fixes (modinfo `suture.description`, `suture.cve`).
    public var description: String?
    public var cves: [String] = []
    /// Whether the module carried a signature, and its signer as `modinfo`
    /// shows it; nil for records written before Suture read signatures.
    public var signed: Bool?
    public var signer: String?
    /// The load-time run-pre check, one line per function
    /// (`RunningCodeCheck.line`); empty when the module carries no record.
    public var verification: [String] = []

    public init(name: String, file: String, identity: FileIdentity, replace: Bool?, loadedAt: String, moduleSize: Int) {
        self.name = name
        self.file = file
        self.identity = identity
        self.replace = replace
        self.loadedAt = loadedAt
        self.moduleSize = moduleSize
    }

    public var json: JSON {
        .object([
            ("name", .string(name)),
            ("file", .string(file)),
            ("fileSize", .integer(identity.size)),
            ("fileModified", .integer(identity.modified)),
            ("fileDevice", .integer(identity.device)),
            ("fileInode", .integer(identity.inode)),
            ("replace", replace.map(JSON.bool) ?? .null),
            ("loadedAt", .string(loadedAt)),
            ("moduleSize", .integer(moduleSize)),
            ("builtFor", .optional(builtFor)),
            ("diffs", .strings(diffs)),
            ("description", .optional(description)),
            ("cves", .strings(cves)),
            ("signed", signed.map(JSON.bool) ?? .null),
            ("signer", .optional(signer)),
            ("verification", .strings(verification)),
        ])
    }

    public init?(json: JSON) {
        guard let name = json["name"]?.stringValue, let file = json["file"]?.stringValue,
            let loadedAt = json["loadedAt"]?.stringValue, let size = json["moduleSize"]?.intValue,
            let fileSize = json["fileSize"]?.intValue, let modified = json["fileModified"]?.intValue,
            let device = json["fileDevice"]?.intValue, let inode = json["fileInode"]?.intValue
        else { return nil }
        self.init(
            name: name, file: file,
            identity: FileIdentity(size: fileSize, modified: modified, device: UInt64(device), inode: UInt64(inode)),
            replace: json["replace"]?.boolValue, loadedAt: loadedAt, moduleSize: Int(size))
        builtFor = json["builtFor"]?.stringValue
        diffs = json["diffs"]?.arrayValue?.compactMap(\.stringValue) ?? []
        description = json["description"]?.stringValue
        cves = json["cves"]?.arrayValue?.compactMap(\.stringValue) ?? []
        signed = json["signed"]?.boolValue
        signer = json["signer"]?.stringValue
        verification = json["verification"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// SHA-256 of the loaded file, if it is still the same file: to tell
    /// whether an installed copy is what runs.
    public func fileDigestIfUnchanged() -> String? {
        guard FileIdentity(path: file) == identity else { return nil }
        return try? SHA256.hex(file: file)
    }

    static func path(_ tree: KernelTree, _ name: String) -> String {
        Path.join(tree.records, name + ".json")
    }

    /// The record of `module` if it describes this load of it.
    public static func read(_ tree: KernelTree, for module: LoadedModule) -> LoadRecord? {
        guard let bytes = try? FileSystem.read(path(tree, module.name)),
            let json = try? JSON.parse(bytes),
            let record = LoadRecord(json: json),
            record.name == module.name, record.moduleSize == module.size
        else { return nil }
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

/// Which file, as `stat(2)` tells: size, modification time, device, inode.
public struct FileIdentity: Sendable, Equatable {
    public var size: Int64
    /// Nanoseconds since the epoch.
    public var modified: Int64
    public var device: UInt64
    public var inode: UInt64

    public init(size: Int64, modified: Int64, device: UInt64, inode: UInt64) {
        self.size = size
        self.modified = modified
        self.device = device
        self.inode = inode
    }

    init(_ st: stat) {
        self.init(
            size: Int64(st.st_size), modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The identity of the file at `path`, or nil when it is gone.
    public init?(path: String) {
        guard let st = try? FileSystem.status(path) else { return nil }
        self.init(st)
    }
}
