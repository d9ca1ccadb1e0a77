// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what a live patch carries: target, diffs, functions, signer and what it fixes.",
        discussion: """
            PATCH is a module file, or the name of a loaded patch (read from the file Suture loaded it \
            from) or of one installed for the running kernel (read from the store). Shows the target \
            release and vermagic, the file's SHA-256, the description and CVEs given to `suture build`, \
            the replace flag, the signer when the module is signed, each diff with its SHA-256, the klp \
            objects and the patched functions with their sympos.

            With --json, prints {"file","name","livepatch","release","vermagic","sha256","diffs", \
            "functions":[{"object","name","sympos"}],"klpObjects","signed","signer","description", \
            "cves","replace","from":"file"|"loaded"|"installed","state"}.
            """)

    @Argument(
        help: ArgumentHelp("A livepatch module file, or the name of a loaded or installed patch.", valueName: "PATCH"),
        completion: .custom(patchNameCompletions))
    var patch: String

    @OptionGroup var output: JSONOption

    func run() throws {
        try reportingErrors(json: output.json) {
            let (path, from, state) = try locate()
            let info = try PatchInfo.read(path)
            if output.json {
                guard case .object(let fields) = info.json else { return }
                printJSON(.object(fields + [("from", .string(from)), ("state", .optional(state))]))
                return
            }
            var text = info.text
            if let state {
                text += "  state: \(from), \(state)\n"
            } else if from != "file" {
                text += "  state: \(from)\n"
            }
            writeStandardOutput(text)
        }
    }

    /// The file to read, where it was found, and the loaded patch's state.
    private func locate() throws -> (path: String, from: String, state: String?) {
        let manager = LivepatchManager(.live(), progress: livepatchProgress)
        if FileSystem.exists(patch) && !FileSystem.isDirectory(patch) { return (patch, "file", nil) }
        let name = ModuleName.normalized(patch)
        let loaded = (try? manager.list())?.first { $0.name == name }
        if let loaded, let file = loaded.file, FileSystem.exists(file) { return (file, "loaded", loaded.state) }
        if let entry = PatchStore.configured().entry(name, release: manager.runningRelease), let module = entry.module {
            return (module, "installed", loaded?.state)
        }
        let why =
            loaded == nil
            ? "no such file, and no patch of that name is loaded or installed for \(manager.runningRelease)"
            : "it is loaded, but not from a file Suture knows (loaded by insmod?)"
        throw LivepatchError(.missingFile, "\(patch): \(why)")
    }
}
