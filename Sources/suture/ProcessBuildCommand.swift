// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform
import ProcessPatch

struct ProcessBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a process patch file from a source diff.",
        discussion: """
            Runs COMMAND in DIR once, with a compiler wrapper first on PATH that adds
            -ffunction-sections -fdata-sections and records every compile, link and ar
            step (a compile-and-link in one step becomes compiles plus a link; make -jN,
            static archives, libtool, CMake, Meson and ccache work). The binary at PATH
            that this build produces is the one to run and patch later: a binary built
            otherwise will not match the patch. The binary must keep its symbol table
            (not stripped) and have a build-id, and LTO is not supported.

            With --deb DIR, DIR is a Debian source package, built as Debian builds it:
            `dpkg-buildpackage -b -uc -us` with its own rules and dpkg-buildflags
            (hardening included), with DEB_BUILD_OPTIONS=nostrip so that the installed
            program keeps its symbol table. The program patched is the one the packages
            install (--binary names it by installed path or name when they install
            several).

            The diff is applied with `patch` to a scratch copy of DIR, only the objects
            whose source it touches are recompiled (all of them when it touches a
            header), and each pair is compared under user-space rules. Changed data,
            thread-local storage and ifuncs are refused, all listed at once, and nothing
            is written.

            The patch file is an ELF relocatable object with a .suture.process section
            holding the binary's build-id, the functions replaced and their expected
            bytes.

            Example:
              suture process build fix.diff --source ~/src/server --build "make" --binary server
              suture process build fix.diff --deb ~/src/hello-1.0 --binary /usr/sbin/hellod
            """)

    @Argument(help: "The source diff (as `diff -u` or `git diff` writes it).")
    var diff: String

    @Option(help: ArgumentHelp("The program's source folder.", valueName: "DIR"))
    var source: String?

    @Option(help: ArgumentHelp("The program's build command, run with /bin/sh -c in DIR.", valueName: "COMMAND"))
    var build: String?

    @Option(help: ArgumentHelp("A Debian source package to build with dpkg-buildpackage.", valueName: "DIR"))
    var deb: String?

    @Option(
        help: ArgumentHelp(
            "The binary the build produces, relative to DIR or absolute (with --deb: its installed path or name).",
            valueName: "PATH"))
    var binary: String?

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("The patch file to write (default: DIFF's name with .patch.o).", valueName: "FILE"))
    var output: String?

    @OptionGroup var outputLevel: OutputLevelOption

    @OptionGroup var json: JSONOption

    func validate() throws {
        if deb != nil {
            guard source == nil, build == nil else {
                throw ValidationError("--deb builds the package itself: give neither --source nor --build")
            }
        } else {
            guard source != nil, build != nil, binary != nil else {
                throw ValidationError("give --source, --build and --binary (or --deb)")
            }
        }
    }

    func run() throws {
        outputLevel.apply()
        try reportingErrors(json: json.json) {
            Cleanup.installSignalHandling()
            var stem = Path.base(of: diff)
            if let dot = stem.lastIndex(of: "."), dot != stem.startIndex { stem = String(stem[..<dot]) }
            let out = Path.absolute(output ?? stem + ".patch.o")
            let recorder = try FileSystem.readLink("/proc/self/exe")
            let result = try ProcessBuild(
                .init(
                    diff: diff, source: deb ?? source ?? "", buildCommand: build ?? "", binary: binary ?? "",
                    output: out, recorder: recorder, debian: deb != nil)
            ).run()
            if json.json {
                printJSON(result.json)
            } else if !outputLevel.quiet {
                var text =
                    "wrote \(result.output): \(result.manifest.functions.count) function(s) for \(result.binary) (build-id \(hexString(result.manifest.buildID)))\n"
                for f in result.manifest.functions {
                    text += "  replaces \(f.name)\(f.file.map { " (\($0))" } ?? "")\n"
                }
                for n in result.manifest.newFunctions { text += "  adds     \(n)\n" }
                for p in result.packages { text += "  built    \(p)\n" }
                writeStandardOutput(text)
            }
        }
    }
}
