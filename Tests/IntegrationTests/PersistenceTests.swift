// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing
import VM

/// `suture install`, `uninstall`, `load --all` and `list --installed` in a
/// guest of the target kernel, with patches built by `suture build` (see
/// `PersistenceModules`). The suite boots twice at most: once, and once
/// more for the reboot, which carries the first guest's store in as
/// /var/lib/suture. Each test starts from an empty store and no patch.
@Suite(.serialized, .persistenceGuest)
struct PersistenceGuestTests {
    static let store = "/var/lib/suture"

    let holder: PersistenceGuest
    var modules: PersistenceModules.Built { holder.modules }

    init() throws {
        holder = try PersistenceGuest.current()
        try Self.prepare(try holder.running(), modules: holder.modules)
    }

    /// Uploads the modules when missing, unloads every patch and empties the store.
    static func prepare(_ guest: TestGuest, modules: PersistenceModules.Built) throws {
        for patch in [modules.procString, modules.staticData]
        where try guest.run("test -e \(patch.guestPath)").commandStatus != 0 {
            try guest.upload(try FileSystem.read(patch.path), to: patch.guestPath)
        }
        try guest.check("suture unload --all && rm -rf \(store) && dmesg -c > /dev/null")
        #expect(try guest.check("ls /sys/kernel/livepatch").isEmpty)
    }

    var guest: TestGuest { get throws { try holder.running() } }

    func release(_ guest: TestGuest) throws -> String { try guest.check("uname -r").trimmingWhitespace() }

    /// Runs a suture command with `--json` and parses its stdout.
    @discardableResult
    func json(
        _ guest: TestGuest, _ command: String, status: Int32 = 0,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> JSON {
        let run = try guest.run("suture \(command) --json")
        #expect(
            run.commandStatus == status, "suture \(command): \(run.stdoutText)\(run.stderrText)",
            sourceLocation: sourceLocation)
        #expect(run.kernelProblem == nil, "suture \(command): \(run.kernelLog)", sourceLocation: sourceLocation)
        return try JSON.parse(run.stdout)
    }

    func isPatched(_ guest: TestGuest, _ patch: PersistencePatch) throws -> Bool {
        patch.name == modules.procString.name
            ? try guest.check("cat /proc/loadavg").hasSuffix(" patched\n")
            : try guest.check("cat /proc/consoles").contains("[")
    }

    func states(_ report: JSON) -> [String] {
        (report["installed"]?.arrayValue ?? []).map {
            "\($0["name"]?.stringValue ?? "?")=\($0["state"]?.stringValue ?? "?")"
        }
    }

    func noKernelErrors(_ guest: TestGuest, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let errors = try guest.run(
            "dmesg | grep -E 'livepatch: .*([Ee]rror|fail|invalid)|Oops|BUG:|WARNING:|Call Trace'")
        #expect(errors.stdoutText.isEmpty, "kernel log:\n\(errors.stdoutText)", sourceLocation: sourceLocation)
    }

    // MARK: - install

    @Test func installLoadsThePatchAndKeepsIt() throws {
        let guest = try guest
        let patch = modules.procString
        let release = try release(guest)
        #expect(try !isPatched(guest, patch))

        let started = Clock.now()
        let report = try json(guest, "install \(patch.guestPath)")
        Figures.note(
            "install \(patch.name) in the guest: \(Figures.seconds(Clock.now() - started)) (host to guest round trip included)"
        )
        #expect(report["load"]?.stringValue == "loaded")
        let installed = report["installed"]
        #expect(installed?["name"]?.stringValue == patch.name)
        #expect(installed?["release"]?.stringValue == release)
        #expect(installed?["sequence"]?.intValue == 1)
        #expect(installed?["source"]?.stringValue == patch.guestPath)
        #expect(installed?["sha256"]?.stringValue == patch.sha256)
        #expect(installed?["module"]?.stringValue == "\(Self.store)/\(release)/\(patch.name).ko")
        #expect(installed?["problem"]?.isNull == true)
        #expect(try isPatched(guest, patch))

        // The store holds the module, byte for byte, and its record.
        #expect(try guest.check("ls \(Self.store)/\(release)") == "\(patch.name).json\n\(patch.name).ko\n")
        #expect(try guest.check("sha256sum \(Self.store)/\(release)/\(patch.name).ko").hasPrefix(patch.sha256 + " "))
        let record = try JSON.parse(try guest.vm.download("\(Self.store)/\(release)/\(patch.name).json"))
        #expect(record["sha256"]?.stringValue == patch.sha256)
        #expect(record["source"]?.stringValue == patch.guestPath)
        #expect(record["installedAt"]?.stringValue?.hasSuffix("Z") == true)

        #expect(states(try json(guest, "list --installed")) == ["\(patch.name)=loaded"])
        // Installing the loaded module again keeps it loaded and stored.
        let again = try json(guest, "install \(patch.guestPath)")
        #expect(again["load"]?.stringValue == "alreadyLoaded")
        #expect(try guest.check("suture list").contains(patch.name))
        try noKernelErrors(guest)
    }

    @Test func aFailedInstallStoresNothing() throws {
        let guest = try guest
        // A klp symbol the kernel cannot resolve: the module is a valid
        // livepatch module for this kernel, and the kernel refuses to load it.
        let broken = try Self.withUnresolvableSymbol(try FileSystem.read(modules.procString.path))
        try guest.upload(broken, to: "/root/broken/livepatch-proc_string.ko")
        let run = try guest.run("suture install /root/broken/livepatch-proc_string.ko --json")
        #expect(run.commandStatus == 1, "\(run.stdoutText)\(run.stderrText)")
        let error = try JSON.parse(run.stdout)["error"]
        #expect(error?["code"]?.stringValue == "livepatch-load-failed", "\(run.stdoutText)")
        #expect(try guest.check("ls -A \(Self.store)/\(try release(guest)) 2>/dev/null || true").isEmpty)
        #expect(states(try json(guest, "list --installed")).isEmpty)
        #expect(try guest.check("ls /sys/kernel/livepatch").isEmpty)
        #expect(try guest.check("grep -c '^livepatch_' /proc/modules || true").trimmingWhitespace() == "0")
    }

    /// `.klp.sym.vmlinux.nr_threads,0` renamed to `nr_threadz`, which kallsyms lacks.
    static func withUnresolvableSymbol(_ module: [UInt8]) throws -> [UInt8] {
        let needle = Array(".klp.sym.vmlinux.nr_threads,".utf8)
        guard
            let start = (0...(module.count - needle.count)).first(where: {
                module[$0..<($0 + needle.count)].elementsEqual(needle)
            })
        else {
            throw TestError("the proc-string module has no klp symbol nr_threads")
        }
        var bytes = module
        bytes[start + needle.count - 2] = UInt8(ascii: "z")
        return bytes
    }

    // MARK: - load --all

    @Test func loadAllBringsBackWhatUnloadAllRemoved() throws {
        let guest = try guest
        let patches = [modules.procString, modules.staticData]
        for patch in patches { try json(guest, "install \(patch.guestPath)") }
        try guest.check("suture unload --all")
        for patch in patches { #expect(try !isPatched(guest, patch)) }
        let before = try json(guest, "list --installed")
        #expect(states(before) == patches.map { "\($0.name)=notLoaded" })
        #expect(before["notLoaded"]?.arrayValue?.compactMap(\.stringValue) == patches.map(\.name))
        #expect(try guest.check("suture list --installed").contains("NOT LOADED"))

        let started = Clock.now()
        let outcome = try json(guest, "load --all")
        Figures.note(
            "load --all of \(patches.count) patches in the guest: \(Figures.seconds(Clock.now() - started)); "
                + "per patch: \((outcome["results"]?.arrayValue ?? []).map { "\($0["seconds"]?.doubleValue ?? -1) s" }.joined(separator: ", "))"
        )
        let results = outcome["results"]?.arrayValue ?? []
        #expect(results.map { $0["name"]?.stringValue } == patches.map(\.name))
        #expect(results.allSatisfy { $0["status"]?.stringValue == "loaded" }, "\(outcome.serialized())")
        #expect(outcome["failed"]?.intValue == 0)
        for patch in patches { #expect(try isPatched(guest, patch)) }
        #expect(states(try json(guest, "list --installed")) == patches.map { "\($0.name)=loaded" })

        // Again: nothing to do, and still a success.
        let again = try json(guest, "load --all")
        #expect((again["results"]?.arrayValue ?? []).allSatisfy { $0["status"]?.stringValue == "alreadyLoaded" })
        #expect(try guest.check("ls /sys/kernel/livepatch") == patches.map { $0.name + "\n" }.joined())
        try noKernelErrors(guest)
    }

    @Test func aDamagedStoreFileIsReportedAndTheOthersLoad() throws {
        let guest = try guest
        let (damaged, intact) = (modules.procString, modules.staticData)
        try json(guest, "install \(damaged.guestPath)")
        try json(guest, "install \(intact.guestPath)")
        try guest.check("suture unload --all")
        let folder = "\(Self.store)/\(try release(guest))"
        try guest.check("printf 'x' >> \(folder)/\(damaged.name).ko")

        let run = try guest.run("suture load --all")
        #expect(run.commandStatus == 1, "\(run.stdoutText)\(run.stderrText)")
        #expect(
            run.stdoutText.contains(
                "\(damaged.name): FAILED: \(damaged.name) is damaged in the store: its module \(folder)/\(damaged.name).ko was altered"
            ),
            "\(run.stdoutText)")
        #expect(run.stdoutText.contains("\(intact.name): loaded"), "\(run.stdoutText)")
        #expect(run.stdoutText.contains("1 of 2 installed patches for"), "\(run.stdoutText)")
        #expect(try !isPatched(guest, damaged))
        #expect(try isPatched(guest, intact))

        let report = try json(guest, "list --installed")
        #expect(states(report) == ["\(damaged.name)=corrupt", "\(intact.name)=loaded"])
        #expect(report["installed"]?[0]?["problem"]?.stringValue?.contains("was altered") == true)
        #expect(try guest.check("suture list --installed").contains("DAMAGED: its module"))

        // A record that is not JSON any more is reported too.
        try guest.check("echo '{' > \(folder)/\(intact.name).json")
        let broken = try json(guest, "load --all", status: 1)
        #expect(broken["failed"]?.intValue == 2)
        #expect(
            (broken["results"]?.arrayValue ?? []).allSatisfy {
                $0["error"]?["code"]?.stringValue == "livepatch-store-corrupt"
            },
            "\(broken.serialized())")
        try noKernelErrors(guest)
    }

    // MARK: - uninstall

    @Test func uninstallEmptiesTheStoreAndLeavesTheKernelAlone() throws {
        let guest = try guest
        let patch = modules.procString
        try json(guest, "install \(patch.guestPath)")
        let outcome = try json(guest, "uninstall \(patch.name)")
        #expect(outcome["uninstalled"]?["name"]?.stringValue == patch.name)
        #expect(outcome["stillLoaded"]?.boolValue == true)
        #expect(try guest.check("ls \(Self.store)") == "", "the store is not empty")
        #expect(try isPatched(guest, patch))
        #expect(try guest.check("cat /sys/kernel/livepatch/\(patch.name)/enabled") == "1\n")

        let report = try json(guest, "list --installed")
        #expect(states(report).isEmpty)
        #expect(report["notInstalled"]?.arrayValue?.compactMap(\.stringValue) == [patch.name])
        #expect(try guest.check("suture list --installed").contains("loaded but not installed: \(patch.name)"))

        let missing = try json(guest, "uninstall \(patch.name)", status: 1)
        #expect(missing["error"]?["code"]?.stringValue == "livepatch-not-installed")
    }

    // MARK: - reboot

    @Test func theStoreSurvivesAReboot() throws {
        let first = try guest
        let patches = [modules.procString, modules.staticData]
        for patch in patches { try json(first, "install \(patch.guestPath)") }
        let release = try release(first)

        // The first guest's store, as its disk would keep it.
        let carried = try TemporaryDirectory(prefix: "suture-persistence-store")
        defer { carried.remove() }
        let folder = Path.join(carried.path, release)
        try FileSystem.makeDirectories(folder)
        for file in try first.check("ls \(Self.store)/\(release)").split(separator: "\n") {
            try FileSystem.write(
                Path.join(folder, String(file)), try first.vm.download("\(Self.store)/\(release)/\(file)"))
        }

        let second = try holder.reboot(carrying: carried.path)
        #expect(try second.check("ls /sys/kernel/livepatch").isEmpty, "a patch is loaded before load --all")
        for patch in patches { #expect(try !isPatched(second, patch)) }
        #expect(states(try json(second, "list --installed")) == patches.map { "\($0.name)=notLoaded" })

        let started = Clock.now()
        let outcome = try json(second, "load --all")
        Figures.note("load --all after the reboot, \(patches.count) patches: \(Figures.seconds(Clock.now() - started))")
        #expect(
            (outcome["results"]?.arrayValue ?? []).map { $0["status"]?.stringValue } == ["loaded", "loaded"],
            "\(outcome.serialized())")
        for patch in patches { #expect(try isPatched(second, patch)) }
        #expect(states(try json(second, "list --installed")) == patches.map { "\($0.name)=loaded" })
        let text = try second.check("suture list --installed")
        Figures.note("suture list --installed after the reboot:\n\(text)")
        #expect(text.hasPrefix("installed for \(release) (running) in \(Self.store)/\(release):\n"), "\(text)")
        try noKernelErrors(second)
    }
}

/// Figures the guest tests measure, printed for the log (not asserted).
enum Figures {
    static func note(_ line: String) { print("figure: \(line)") }
    static func seconds(_ value: Double) -> String { "\((value * 100).rounded() / 100) s" }
}
