// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing

/// What a patch fixes (`suture build --description --cve`), as `suture
/// info`, `uname`, `list`, `status` and the store show it, in the
/// persistence suite's guest with its patches built by `suture build`.
extension PersistenceGuestTests {
    @Test func infoAndUnameShowWhatThePatchFixes() throws {
        let guest = try guest
        let fixed = modules.procString
        let plain = modules.staticData
        let release = try release(guest)
        let cves = PersistenceModules.procStringCVEs
        let description = PersistenceModules.procStringDescription

        // The file, before anything is loaded.
        let info = try json(guest, "info \(fixed.guestPath)")
        #expect(info["name"]?.stringValue == fixed.name)
        #expect(info["release"]?.stringValue == release)
        #expect(info["description"]?.stringValue == description)
        #expect(info["cves"] == .strings(cves))
        #expect(info["replace"]?.boolValue == false)
        #expect(info["sha256"]?.stringValue == fixed.sha256)
        #expect(info["from"]?.stringValue == "file")
        #expect(info["klpObjects"]?.arrayValue?.compactMap(\.stringValue).contains("vmlinux") == true)
        let functions = info["functions"]?.arrayValue ?? []
        #expect(
            functions.contains {
                $0["name"]?.stringValue == "loadavg_proc_show" && $0["object"]?.stringValue == "vmlinux"
            })
        let diffs = info["diffs"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(diffs.count == 1 && diffs[0].hasPrefix("patch.diff:sha256:"), "\(diffs)")
        let text = try guest.check("suture info \(fixed.guestPath)")
        #expect(text.contains("  description: \(description)\n"), "\(text)")
        #expect(text.contains("  cves: \(cves.joined(separator: ", "))\n"), "\(text)")
        #expect(text.contains("  function: vmlinux: loadavg_proc_show,"), "\(text)")
        #expect(text.contains("  signer: unsigned\n"), "\(text)")
        let none = try json(guest, "info \(plain.guestPath)")
        #expect(none["description"]?.isNull == true)
        #expect(none["cves"] == .array([]))

        // Nothing in effect yet.
        #expect(try guest.check("suture uname") == "\(release)\nno live patches in effect\n")

        // Installed and loaded: the store record, list, status and uname carry it.
        let installed = try json(guest, "install \(fixed.guestPath)")
        #expect(installed["installed"]?["description"]?.stringValue == description)
        #expect(installed["installed"]?["cves"] == .strings(cves))
        let record = try JSON.parse(try guest.vm.download("\(Self.store)/\(release)/\(fixed.name).json"))
        #expect(record["description"]?.stringValue == description)
        #expect(record["cves"] == .strings(cves))
        try guest.check("suture load \(plain.guestPath)")

        let list = try json(guest, "list")
        let entry = list["patches"]?.arrayValue?.first { $0["name"]?.stringValue == fixed.name }
        #expect(entry?["description"]?.stringValue == description)
        #expect(entry?["cves"] == .strings(cves))
        #expect(try guest.check("suture status \(fixed.name)").contains("  cves: \(cves.joined(separator: ", "))\n"))

        let uname = try json(guest, "uname")
        #expect(uname["release"]?.stringValue == release)
        #expect(uname["cves"] == .strings(cves))
        #expect(
            uname["patches"]?.arrayValue?.compactMap { $0["name"]?.stringValue }.sorted()
                == [fixed.name, plain.name].sorted())
        let unameText = try guest.check("suture uname")
        #expect(unameText.hasPrefix("\(release)\n"), "\(unameText)")
        #expect(
            unameText.contains("live patch \(fixed.name): fixes \(cves.joined(separator: ", ")) (\(description))\n"),
            "\(unameText)")
        #expect(unameText.contains("live patch \(plain.name)\n"), "\(unameText)")

        // By name: the loaded patch's file; once unloaded, the store's copy.
        let byName = try json(guest, "info \(fixed.name)")
        #expect(byName["from"]?.stringValue == "loaded")
        #expect(byName["state"]?.stringValue == "enabled")
        #expect(byName["cves"] == .strings(cves))
        try guest.check("suture unload --all")
        let stored = try json(guest, "info \(fixed.name)")
        #expect(stored["from"]?.stringValue == "installed")
        #expect(stored["file"]?.stringValue == "\(Self.store)/\(release)/\(fixed.name).ko")
        #expect(try guest.check("suture uname") == "\(release)\nno live patches in effect\n")
        let missing = try guest.run("suture info livepatch_nothing_here")
        #expect(missing.commandStatus == 1)
        #expect(missing.stderrText.contains("no such file, and no patch of that name is loaded or installed"))
        try noKernelErrors(guest)
    }
}
