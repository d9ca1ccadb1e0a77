// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
import Platform
import ProcessPatch

/// The compiler wrapper of `suture process build`: records one compile and
/// runs the real compiler in its place.
struct ProcessCompileRecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile-record",
        abstract: "Record a compile and run the real compiler (used by `process build`).",
        shouldDisplay: false)

    @Option(help: ArgumentHelp("The compile log to append to.", valueName: "FILE")) var log: String
    @Option(help: ArgumentHelp("The real compiler to run.", valueName: "PATH")) var compiler: String
    @Argument(parsing: .postTerminator) var arguments: [String] = []

    func run() throws {
        let wrapped = CompileRecord.wrappedArguments(arguments)
        let record = CompileRecord(compiler: compiler, directory: FileSystem.currentDirectory(), arguments: wrapped)
        if record.source != nil {
            do { try CompileRecord.write(record, log: log) } catch {
                Progress.warn("suture: cannot record the compile: \(error.description)")
                throw ExitCode(1)
            }
        }
        let argv = [compiler] + wrapped
        let pointers = argv.map { strdup($0) } + [nil]
        execv(compiler, pointers)
        Progress.warn("suture: cannot run \(compiler): \(String(cString: strerror(errno)))")
        throw ExitCode(127)
    }
}
