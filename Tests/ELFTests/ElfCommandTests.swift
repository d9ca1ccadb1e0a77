// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import TestSupport
import Testing

/// `suture elf` as users run it: the built binary, its output and exit codes.
@Suite struct ElfCommandTests {
    @Test func jsonOfAModuleMatchesTheLibrary() throws {
        let module = Samples.moduleSample(count: 5)[0]
        let result = try Command.run([try SutureBinary.checked(), "elf", "--json", module])
        #expect(result.termination == .exited(0))
        let printed = try JSON.parse(result.stdout)
        var out = ByteWriter()
        ELFDump.writeJSON(try ELFFile.open(module), to: &out)
        #expect(printed == (try JSON.parse(out.finish())))
        let keys = printed.objectValue!.map(\.0)
        #expect(keys == ["sections", "symbols", "dynamicSymbols", "relocations"])
    }

    @Test func textListsSectionsSymbolsAndRelocations() throws {
        let module = Samples.moduleSample(count: 5)[0]
        let result = try Command.run([try SutureBinary.checked(), "elf", module])
        #expect(result.termination == .exited(0))
        #expect(result.stdoutText.contains("Sections:"))
        #expect(result.stdoutText.contains("Relocation section '.rela"))
        #expect(result.stdoutText.contains("__fentry__"))
    }

    @Test func badFilesExitOneWithFileAndOffset() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let garbage = Path.join(dir.path, "garbage.ko")
        try FileSystem.write(garbage, Array("this is not an object file at all".utf8))
        let text = try Command.run([try SutureBinary.checked(), "elf", garbage])
        #expect(text.termination == .exited(1))
        #expect(text.stdout.isEmpty)
        #expect(text.stderrText.contains("\(garbage): byte 0x0 (0): not an ELF file"), "\(text.stderrText)")

        let json = try Command.run([try SutureBinary.checked(), "elf", "--json", garbage])
        #expect(json.termination == .exited(1))
        let error = try JSON.parse(json.stdout)
        #expect(error["error"]?["code"]?.stringValue == "elf-not-elf")
        #expect(error["error"]?["message"]?.stringValue?.contains(garbage) == true)

        let truncated = Path.join(dir.path, "truncated.ko")
        let module = try FileSystem.read(Samples.moduleSample(count: 5)[0])
        try FileSystem.write(truncated, Array(module[0..<(module.count / 2)]))
        let cut = try Command.run([try SutureBinary.checked(), "elf", truncated])
        #expect(cut.termination == .exited(1))
        #expect(cut.stderrText.contains("extends past the end of the file"), "\(cut.stderrText)")

        let missing = try Command.run([try SutureBinary.checked(), "elf", Path.join(dir.path, "missing.ko")])
        #expect(missing.termination == .exited(1))
        #expect(
            missing.stderrText.contains("missing.ko: cannot read: No such file or directory"), "\(missing.stderrText)")

        let usage = try Command.run([try SutureBinary.checked(), "elf"])
        #expect(usage.termination == .exited(64))
    }

    /// The binary runs inside small VM guests: no full Foundation, no ICU.
    @Test func binaryStaysLean() throws {
        let symbols = try Command.output(["nm", "--defined-only", try SutureBinary.checked()])
        #expect(!symbols.contains("FoundationInternationalization"), "FoundationInternationalization is linked in")
        #expect(!symbols.contains("ucol_open"), "ICU is linked in")
        let libraries = try Command.output(["ldd", try SutureBinary.checked()])
        #expect(!libraries.contains("libswiftCore"), "the Swift runtime must be linked statically")
        #expect(!libraries.contains("Foundation"))
    }
}
