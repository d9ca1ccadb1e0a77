// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import ProcessPatch
import Testing

/// The formats Suture reads and writes: /proc maps, the patch manifest, the
/// patch file built from a fixture, and the compile records.
@Suite struct FormatTests {
    @Test func mapsParseAndHoles() throws {
        let text = """
            55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234                       /srv/app
            55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 1234                       /srv/app
            55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
            7f0000000000-7f0000002000 r-xp 00000000 00:01 264                        /memfd:suture:1:fix (deleted)
            7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]

            """
        let map = try MemoryMap.parse(text)
        #expect(map.mappings.count == 5)
        let code = try #require(map.mapping(containing: 0x55d0_c0a0_1800))
        #expect(code.executable && !code.writable && code.offset == 0x1000 && code.path == "/srv/app" && code.isFile)
        #expect(map.mapping(containing: 0x55d0_c0a0_2000) == nil)
        #expect(map.mappings[3].path == "/memfd:suture:1:fix (deleted)" && !map.mappings[3].isFile)
        let holes = map.holes(in: 0x55d0_c0a0_0000..<0x55d0_c200_0000)
        #expect(holes == [0x55d0_c0a0_2000..<0x55d0_c100_0000, 0x55d0_c102_1000..<0x55d0_c200_0000])
        #expect(throws: ProcessError.self) { try MemoryMap.parse("not a mapping\n") }
    }

    @Test func manifestRoundTrip() throws {
        let manifest = PatchManifest(
            name: "fix", buildID: [0xde, 0xad, 0xbe, 0xef], binary: "/srv/app",
            functions: [
                .init(
                    name: "helper", file: "calc.c", isLocal: true, symbol: "helper", size: 6,
                    expected: [0x55, 0xe8, 0, 0, 0, 0], masked: [2..<6])
            ],
            references: [.init(symbol: "printf", name: "printf", file: nil, origin: .external)],
            newFunctions: ["extra"], sources: ["calc.c"])
        let parsed = try PatchManifest(json: try JSON.parse(manifest.json.serialized()), what: "test")
        #expect(parsed == manifest)
        #expect(parsed.functions[0].firstMismatch([0x55, 0xe8, 1, 2, 3, 4]) == nil)
        #expect(parsed.functions[0].firstMismatch([0x56, 0xe8, 0, 0, 0, 0]) == 0)
        #expect(throws: ProcessError.self) { try PatchManifest(json: .object([("format", .int(99))]), what: "test") }
    }

    @Test func compileRecordsFindSourceAndObject() {
        let r = CompileRecord(
            compiler: "/usr/bin/gcc", directory: "/src/app/lib",
            arguments: ["-O2", "-I", "../include", "-c", "-o", "../out/x.o", "x.c", "-ffunction-sections"])
        #expect(r.source == "/src/app/lib/x.c")
        #expect(r.object == "/src/app/out/x.o")
        let implicit = CompileRecord(compiler: "/usr/bin/cc", directory: "/src", arguments: ["-c", "dir/y.c"])
        #expect(implicit.object == "/src/y.o")
        let link = CompileRecord(compiler: "/usr/bin/cc", directory: "/src", arguments: ["-o", "app", "a.o", "b.o"])
        #expect(link.source == nil)
        #expect(
            CompileRecord.wrappedArguments(["-c", "a.c", "-ffunction-sections"]) == [
                "-c", "a.c", "-ffunction-sections", "-fdata-sections",
            ])
    }

    /// The patch file of the loop fixture: an ELF relocatable object that
    /// binutils accepts, with a manifest naming the build-id of the binary.
    @Test func builtPatchFile() throws {
        let fixture = try Fixture("loop")
        let (result, json, path) = try fixture.build(binary: "loop")
        try #require(result.termination.succeeded, "\(result.summary)")
        let patch = try PatchFile(path: path)
        let binaryID = try #require(try ELFFile.open(fixture.path("loop")).buildID())
        #expect(patch.manifest.buildID == binaryID)
        #expect(Set(patch.manifest.functions.map(\.name)) == ["compute", "scale"])
        #expect(json["functions"]?.arrayValue?.count == 2)
        #expect(json["buildID"]?.stringValue == hexString(binaryID))
        let readelf = try Command.run(["readelf", "-aW", path])
        #expect(readelf.termination.succeeded && readelf.stderrText.isEmpty, "\(readelf.stderrText)")
        // The records of the build persist in the tree for later builds.
        #expect(FileSystem.exists(fixture.path(".suture-compile.json")))
        // A second build of the same tree (nothing to recompile) still works.
        let again = try fixture.build(binary: "loop", output: path + ".2")
        #expect(again.result.termination.succeeded, "\(again.result.summary)")
    }
}
