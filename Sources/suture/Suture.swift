// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform

@main
struct Suture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suture",
        abstract: "Live-patch Linux kernels and running programs from a plain source diff.",
        discussion: """
            Exit status: 0 success, 1 failure or refusal, 64 usage error.
            `suture vm` returns the guest command's status, 124 on timeout,
            125 for a VM or tool failure and 126 for a guest kernel oops, panic or warning.
            """,
        version: "suture \(sutureVersion) (commit \(sutureCommit))",
        subcommands: [
            ElfCommand.self,
            DiffCommand.self,
            BuildCommand.self,
            KeyCommand.self,
            DemoCommand.self,
            KernelCommand.self,
            VMCommand.self,
            VMAgentCommand.self,
            ProcessCommand.self,
            LoadCommand.self,
            UnloadCommand.self,
            ListCommand.self,
            StatusCommand.self,
            InfoCommand.self,
            UnameCommand.self,
            ForceCommand.self,
            InstallCommand.self,
            UninstallCommand.self,
        ]
    )
}
