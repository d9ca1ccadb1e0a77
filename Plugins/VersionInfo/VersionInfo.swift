// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import PackagePlugin

/// Writes `Version.swift` for the `suture` target before every build:
/// the version from debian/changelog and the git commit, from
/// scripts/version.sh. The file is rewritten only when it changes.
@main
struct VersionInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let root = context.package.directoryURL
        return [
            .prebuildCommand(
                displayName: "suture version",
                executable: URL(filePath: "/bin/sh"),
                arguments: [
                    root.appending(path: "scripts/version.sh").path(), "--swift",
                    output.appending(path: "Version.swift").path(),
                ],
                outputFilesDirectory: output)
        ]
    }
}
