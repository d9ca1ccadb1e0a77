// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// What a process patch replaces and what it expects to find, kept as JSON
/// in the `.suture.process` section of the patch object.
///
/// ```
/// {"format": 1, "name": "fix", "buildID": "…", "binary": "/src/app",
///  "functions": [{"name": "compute", "file": "calc.c", "local": false,
///                 "symbol": "compute", "size": 42, "expected": "8d44…",
///                 "masked": [[12, 4]]}],
///  "references": [{"symbol": "helper", "name": "helper", "file": "calc.c", "origin": "local"}],
///  "newFunctions": ["helper2"], "sources": ["calc.c"]}
/// ```
public struct PatchManifest: Sendable, Equatable {
    public static let format = 1
    public static let sectionName = ".suture.process"

    /// A function of the target that the patch redirects.
    public struct Function: Sendable, Equatable {
        /// Its name in the target (and in the original object).
        public var name: String
        /// The source file (`STT_FILE`) that defines it, for static functions.
        public var file: String?
        public var isLocal: Bool
        /// The symbol of the new code in the patch object.
        public var symbol: String
        /// The old function's size in bytes.
        public var size: Int
        /// The old function's bytes, as compiled; bytes under `masked`
        /// depend on the link and are not compared.
        public var expected: [UInt8]
        public var masked: [Range<Int>]

        public init(
            name: String, file: String?, isLocal: Bool, symbol: String, size: Int, expected: [UInt8],
            masked: [Range<Int>]
        ) {
            self.name = name
            self.file = file
            self.isLocal = isLocal
            self.symbol = symbol
            self.size = size
            self.expected = expected
            self.masked = masked
        }

        /// Whether `actual` (the function's bytes in memory) matches, outside masked ranges.
        public func firstMismatch(_ actual: [UInt8]) -> Int? {
            guard actual.count >= expected.count else { return actual.count }
            var mask = [Bool](repeating: false, count: expected.count)
            for r in masked { for i in r where i >= 0 && i < mask.count { mask[i] = true } }
            for i in 0..<expected.count where !mask[i] && actual[i] != expected[i] { return i }
            return nil
        }
    }

    /// A symbol the patch object leaves undefined, and where to find it.
    public struct Reference: Sendable, Equatable {
        public enum Origin: String, Sendable { case local, global, external }
        /// The undefined symbol's name in the patch object.
        public var symbol: String
        /// Its name in the target.
        public var name: String
        /// The source file of a static symbol.
        public var file: String?
        public var origin: Origin

        public init(symbol: String, name: String, file: String?, origin: Origin) {
            self.symbol = symbol
            self.name = name
            self.file = file
            self.origin = origin
        }
    }

    public var name: String
    /// The build-id of the program (or library) the patch is for.
    public var buildID: [UInt8]
    /// The binary the patch was built against, for messages.
    public var binary: String
    public var functions: [Function]
    public var references: [Reference]
    public var newFunctions: [String]
    public var sources: [String]

    public init(
        name: String, buildID: [UInt8], binary: String, functions: [Function], references: [Reference],
        newFunctions: [String], sources: [String]
    ) {
        self.name = name
        self.buildID = buildID
        self.binary = binary
        self.functions = functions
        self.references = references
        self.newFunctions = newFunctions
        self.sources = sources
    }

    public var json: JSON {
        .object([
            ("format", .int(Int64(Self.format))),
            ("name", .string(name)),
            ("buildID", .string(hexString(buildID))),
            ("binary", .string(binary)),
            (
                "functions",
                .array(
                    functions.map { f in
                        .object([
                            ("name", .string(f.name)), ("file", .optional(f.file)), ("local", .bool(f.isLocal)),
                            ("symbol", .string(f.symbol)), ("size", .int(Int64(f.size))),
                            ("expected", .string(hexString(f.expected))),
                            (
                                "masked",
                                .array(f.masked.map { .array([.int(Int64($0.lowerBound)), .int(Int64($0.count))]) })
                            ),
                        ])
                    })
            ),
            (
                "references",
                .array(
                    references.map { r in
                        .object([
                            ("symbol", .string(r.symbol)), ("name", .string(r.name)), ("file", .optional(r.file)),
                            ("origin", .string(r.origin.rawValue)),
                        ])
                    })
            ),
            ("newFunctions", .strings(newFunctions)),
            ("sources", .strings(sources)),
        ])
    }

    public init(json: JSON, what: String) throws(ProcessError) {
        func bad(_ message: String) -> ProcessError { ProcessError(.badPatch, "\(what): \(message)") }
        guard let format = json["format"]?.intValue else { throw bad("the manifest has no format number") }
        guard format == Int64(Self.format) else {
            throw bad("manifest format \(format) is not supported (this suture reads format \(Self.format))")
        }
        guard let name = json["name"]?.stringValue, let idText = json["buildID"]?.stringValue,
            let buildID = bytes(fromHex: idText), !buildID.isEmpty, let binary = json["binary"]?.stringValue,
            let functionList = json["functions"]?.arrayValue
        else {
            throw bad("the manifest lacks name, buildID, binary or functions")
        }
        var functions: [Function] = []
        for (i, f) in functionList.enumerated() {
            guard let fname = f["name"]?.stringValue, let symbol = f["symbol"]?.stringValue,
                let size = f["size"]?.intValue, size > 0, size < 1 << 24,
                let expectedText = f["expected"]?.stringValue, let expected = bytes(fromHex: expectedText),
                expected.count == Int(size)
            else {
                throw bad("function \(i) of the manifest is incomplete")
            }
            var masked: [Range<Int>] = []
            for m in f["masked"]?.arrayValue ?? [] {
                guard let start = m[0]?.intValue, let count = m[1]?.intValue, start >= 0, count >= 0,
                    start + count <= size
                else { throw bad("function \(fname): a masked range lies outside it") }
                masked.append(Int(start)..<Int(start + count))
            }
            functions.append(
                Function(
                    name: fname, file: f["file"]?.stringValue, isLocal: f["local"]?.boolValue ?? false,
                    symbol: symbol, size: Int(size), expected: expected, masked: masked))
        }
        var references: [Reference] = []
        for r in json["references"]?.arrayValue ?? [] {
            guard let symbol = r["symbol"]?.stringValue, let rname = r["name"]?.stringValue,
                let origin = r["origin"]?.stringValue.flatMap(Reference.Origin.init(rawValue:))
            else {
                throw bad("a reference of the manifest is incomplete")
            }
            references.append(Reference(symbol: symbol, name: rname, file: r["file"]?.stringValue, origin: origin))
        }
        self.init(
            name: name, buildID: buildID, binary: binary, functions: functions, references: references,
            newFunctions: (json["newFunctions"]?.arrayValue ?? []).compactMap(\.stringValue),
            sources: (json["sources"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
}

/// A process patch file: an ELF relocatable object holding the new code
/// and data, with the manifest in `.suture.process`.
public struct PatchFile: Sendable {
    public let path: String
    public let object: ELFFile
    public let manifest: PatchManifest
    /// SHA-256 of the file, which identifies the patch in a process.
    public let digest: String

    public init(path: String) throws(ProcessError) {
        let object: ELFFile
        do {
            object = try ELFFile.open(path)
        } catch {
            throw ProcessError(.badPatch, "\(path): not a patch file: \(error.description)")
        }
        try self.init(object: object)
    }

    public init(object: ELFFile) throws(ProcessError) {
        let path = object.path
        guard object.header.type == FileType.relocatable, object.header.machine == Machine.x86_64 else {
            throw ProcessError(.badPatch, "\(path): not an x86-64 relocatable object, so not a suture process patch")
        }
        guard let section = object.section(named: PatchManifest.sectionName) else {
            throw ProcessError(
                .badPatch, "\(path): has no \(PatchManifest.sectionName) section; build it with `suture process build`")
        }
        let json: JSON
        do {
            json = try JSON.parse(object.data(section).array)
        } catch {
            throw ProcessError(
                .badPatch, "\(path): the \(PatchManifest.sectionName) manifest is not valid JSON: \(error.description)")
        }
        manifest = try PatchManifest(json: json, what: path)
        self.path = path
        self.object = object
        digest = SHA256.hex(Array(object.storage.bytes))
        for f in manifest.functions
        where !object.symbols.contains(where: { $0.name == f.symbol && $0.definingSection != nil }) {
            throw ProcessError(
                .badPatch,
                "\(path): the manifest names \(f.symbol) as the new code of \(f.name), but the object does not define it"
            )
        }
    }
}
