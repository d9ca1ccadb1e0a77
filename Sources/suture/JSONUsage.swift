// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
import Platform

extension Suture {
    /// ArgumentParser's own `main`, except that with `--json` a usage error
    /// (an unknown option, a missing argument, a failed validation) is one
    /// JSON object on stdout, `{"error":{"code":"usage","message":…}}`, and
    /// exit status 64, like every other error under `--json`.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let status = exitCode(for: error)
            if status == .validationFailure && wantsJSON(arguments) {
                let object: JSON = .object([
                    (
                        "error",
                        .object([
                            ("code", .string("usage")),
                            ("message", .string(message(for: error))),
                        ])
                    )
                ])
                writeStandardOutput(object.serialized() + "\n")
                Cleanup.runAll()
                Glibc.exit(status.rawValue)
            }
            exit(withError: error)
        }
    }

    /// Whether `--json` comes before any `--` end of options.
    static func wantsJSON(_ arguments: [String]) -> Bool {
        for argument in arguments {
            if argument == "--" { return false }
            if argument == "--json" { return true }
        }
        return false
    }
}
