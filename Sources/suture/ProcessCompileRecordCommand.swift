// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
import Platform
import ProcessPatch

/// The compiler wrapper of `suture process build`: records one compile, link
/// or archive step and runs the real tool in its place (a compile-and-link
/// step as separate compiles and a link; see `CompilerWrapper`).
struct ProcessCompileRecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile-record",
        abstract: "Record a compile and run the real compiler (used by `process build`).",
        shouldDisplay: false)

    @Option(help: ArgumentHelp("The record folder to add to.", valueName: "DIR")) var log: String
    @Option(help: ArgumentHelp("The real compiler or archiver to run.", valueName: "PATH")) var compiler: String
    @Option(help: ArgumentHelp("Where split compiles put their objects.", valueName: "DIR")) var objects: String
    @Option(help: ArgumentHelp("A compiler launcher to run the compiler through (ccache).", valueName: "PATH"))
    var launcher: String?
    @Flag(help: "The tool is an archiver (ar).") var archiver = false
    @Argument(parsing: .postTerminator) var arguments: [String] = []

    func run() throws {
        let directory = FileSystem.currentDirectory()
        let plan =
            archiver
            ? CompilerWrapper.archivePlan(arguments, archiver: compiler, directory: directory)
            : CompilerWrapper(compiler: compiler, objects: objects).plan(arguments, directory: directory)
        do {
            if plan.runs.count > 1 { try FileSystem.makeDirectories(objects) }
            try CompileRecord.write(plan.records, log: log)
        } catch {
            Progress.warn("suture: cannot record the step: \(error.description)")
            throw ExitCode(1)
        }
        let prefix = (launcher.map { [$0] } ?? []) + [compiler]
        for arguments in plan.runs.dropLast() {
            let status: Termination
            do {
                status = try ChildProcess(prefix + arguments, stdin: .inherit, stdout: .inherit, stderr: .inherit)
                    .wait()
            } catch {
                Progress.warn("suture: cannot run \(compiler): \(error.description)")
                throw ExitCode(127)
            }
            guard status.succeeded else { throw ExitCode(status.status) }
        }
        let argv = prefix + (plan.runs.last ?? arguments)
        let pointers = argv.map { strdup($0) } + [nil]
        execv(argv[0], pointers)
        Progress.warn("suture: cannot run \(argv[0]): \(String(cString: strerror(errno)))")
        throw ExitCode(127)
    }
}
