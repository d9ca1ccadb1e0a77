// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import ELF
import Platform

struct ElfCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "elf",
        abstract: "Print the sections, symbols and relocations of an ELF file.",
        discussion: """
            Reads relocatable objects, kernel modules (.ko, also .ko.xz and .ko.zst), executables and
            shared objects. With --json, prints one object:
            {"sections":[…],"symbols":[…],"dynamicSymbols":[…],"relocations":[…]}, with types spelled
            as readelf prints them.
            """)

    @Argument(help: "The ELF file.")
    var file: String

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
            let elf = try ELFFile.open(file)
            var out = ByteWriter(fd: 1)
            if output.json {
                ELFDump.writeJSON(elf, to: &out)
            } else {
                ELFDump.writeText(elf, to: &out)
            }
            out.flush()
        }
    }
}
