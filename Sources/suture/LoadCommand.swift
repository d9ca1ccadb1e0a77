// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a livepatch module into the running kernel and wait for its transition.",
        discussion: """
            Refuses a file that is not a livepatch module (modinfo livepatch=Y) built for the running \
            kernel release. Loads it with finit_module and shows the tasks that have not migrated yet. \
            If the transition does not finish within --timeout seconds, prints the blocking tasks with \
            their kernel stacks, reverses the transition, removes the module and exits 1. When the new \
            patch replaces earlier ones, their modules are removed too.

            --all loads every patch installed for the running kernel (`suture install`) in install \
            order, as the boot unit does: it reports each one, goes on past a failure, and exits 1 if \
            any failed. Patches loaded already stay as they are; a damaged store entry (unreadable \
            record, module missing or not matching its SHA-256) fails without being loaded; patches \
            that a cumulative patch installed later replaces are skipped.

            With --json, prints {"patches":[…],"loaded":NAME,"replaced":[…]}: every loaded patch \
            afterwards, in the shape of `suture list --json`. With --all, {"release","directory", \
            "results":[{"name","status":"loaded"|"alreadyLoaded"|"superseded"|"failed", \
            "error":{"code","message"}|null,"seconds"}],"failed":N,"patches":[…]}.
            """)

    @Argument(
        help: "The livepatch module file (.ko, also .ko.xz or .ko.zst).",
        completion: .file(extensions: moduleExtensions))
    var module: String?

    @Flag(help: "Load every patch installed for the running kernel, in install order.")
    var all = false

    @Argument(help: ArgumentHelp("Module parameters for the kernel.", valueName: "PARAM=VALUE"))
    var parameters: [String] = []

    @Option(help: ArgumentHelp("Seconds to wait for the transition before reversing it.", valueName: "SECONDS"))
    var timeout: Double = 30

    @Flag(name: .customLong("no-wait"), help: "Return right after loading, while the transition runs.")
    var noWait = false

    @Flag(
        name: .customLong("no-verify"),
        help:
            "Skip the load-time run-pre check: do not compare the code the patch was built against with the running kernel's (/proc/kcore)."
    )
    var noVerify = false

    @OptionGroup var output: JSONOption

    func validate() throws {
        guard (module != nil) != all else { throw ValidationError("give either MODULE or --all") }
        guard !all || (parameters.isEmpty && !noWait) else {
            throw ValidationError("--all takes no module parameters and no --no-wait")
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let manager = LivepatchManager(.live(), progress: livepatchProgress)
            guard let module else {
                try loadAll(manager)
                return
            }
            let outcome = try manager.load(
                module, parameters: parameters, timeout: timeout, wait: !noWait, verify: !noVerify)
            if output.json {
                printJSON(
                    LivepatchJSON.patches(
                        try manager.list(),
                        [
                            ("loaded", .string(outcome.patch.name)),
                            ("replaced", .strings(outcome.replaced)),
                            (
                                "verification",
                                .array(
                                    outcome.verification.map {
                                        .object([
                                            ("target", .string($0.target)), ("function", .string($0.function)),
                                            ("sympos", .integer($0.sympos)), ("status", .string($0.status.rawValue)),
                                            ("detail", .string($0.detail)),
                                        ])
                                    })
                            ),
                            ("verifySeconds", .double((outcome.verifySeconds * 10000).rounded() / 10000)),
                        ]))
            } else {
                var text = LivepatchText.status([outcome.patch])
                if !outcome.replaced.isEmpty {
                    text += "replaced and removed: \(outcome.replaced.joined(separator: ", "))\n"
                }
                writeStandardOutput(text)
            }
        }
    }
}

extension LoadCommand {
    /// `--all`: exits 1 after printing when any patch failed.
    private func loadAll(_ manager: LivepatchManager) throws {
        let outcome = try manager.loadAll(store: .configured(), timeout: timeout)
        if output.json {
            printJSON(
                .object([
                    ("release", .string(outcome.release)),
                    ("directory", .string(outcome.directory)),
                    ("results", .array(outcome.results.map(\.json))),
                    ("failed", .integer(outcome.failed.count)),
                    ("patches", .array(((try? manager.list()) ?? []).map(\.json))),
                ]))
        } else {
            writeStandardOutput(StoreText.loadAll(outcome))
        }
        if !outcome.failed.isEmpty { throw ExitCode(1) }
    }
}

/// Progress lines of the live-patch commands, on stderr.
@Sendable func livepatchProgress(_ line: String) {
    Progress.say("suture: " + line)
}
