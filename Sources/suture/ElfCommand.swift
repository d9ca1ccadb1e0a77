// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import ELF
import Platform

struct ElfCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "elf",
        abstract: "Print the sections, symbols and relocations of an ELF file.")

    @Argument(help: "An object, kernel module (.ko, .ko.xz, .ko.zst), executable or shared object.")
    var file: String

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
        }
    }
}
