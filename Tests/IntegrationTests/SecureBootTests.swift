// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing
import VM

/// Signed live patches in a guest booted with UEFI Secure Boot really on
/// (`suture vm --secure-boot --mok`): the firmware verifies Debian's signed
/// kernel, the kernel locks itself down and trusts the seeded machine
/// owner key. One patch, proc-string, is built once by `suture build
/// --sign-key/--sign-cert` with a key from `suture key create`; its
/// unsigned twin is the same bytes without the signature, and two more
/// copies are signed by other keys. The suite boots twice: once, and once
/// more for the reboot that carries the store in.
@Suite(.serialized, .secureBootGuest)
struct SecureBootGuestTests {
    static let store = "/var/lib/suture"
    let holder: SecureBootGuest
    var patches: SecureBootPatches.Built { holder.patches }

    init() throws {
        holder = try SecureBootGuest.current()
        let guest = try holder.running()
        for (path, guestPath) in patches.uploads
        where try guest.run("test -e \(guestPath)").commandStatus != 0 {
            try guest.upload(try FileSystem.read(path), to: guestPath)
        }
        try guest.check("suture unload --all && rm -rf \(Self.store) && dmesg -c > /dev/null")
    }

    func json(_ guest: TestGuest, _ command: String, status: Int32, sourceLocation: SourceLocation = #_sourceLocation)
        throws -> JSON
    {
        let run = try guest.run("suture \(command) --json")
        #expect(
            run.commandStatus == status, "suture \(command): \(run.stdoutText)\(run.stderrText)",
            sourceLocation: sourceLocation)
        #expect(run.kernelProblem == nil, "\(run.kernelLog)", sourceLocation: sourceLocation)
        return try JSON.parse(run.stdout)
    }

    func isPatched(_ guest: TestGuest) throws -> Bool { try guest.check("cat /proc/loadavg").hasSuffix(" patched\n") }

    func taint(_ guest: TestGuest) throws -> UInt64 {
        UInt64(try guest.check("cat /proc/sys/kernel/tainted").trimmingWhitespace()) ?? .max
    }

    @Test func theKernelIsLockedDownWithTheMOKTrusted() throws {
        let guest = try holder.running()
        #expect(try guest.check("cat /sys/kernel/security/lockdown").contains("[integrity]"))
        #expect(try guest.check("cat /sys/module/module/parameters/sig_enforce").trimmingWhitespace() == "Y")
        let log = try guest.check("cat /proc/keys")
        #expect(log.contains(" \(SecureBootPatches.trustedName): "), "\(log)")
        #expect(!log.contains(SecureBootPatches.otherName), "\(log)")
        let status = try json(guest, "status", status: 0)
        #expect(status["lockdown"]?.stringValue == "integrity")
        #expect(status["sigEnforce"]?.boolValue == true)
    }

    @Test func anUnsignedPatchIsRefusedBeforeTheKernelIsAsked() throws {
        let guest = try holder.running()
        let report = try json(guest, "load \(SecureBootPatches.guestPath("unsigned"))", status: 1)
        #expect(report["error"]?["code"]?.stringValue == "livepatch-signature-required", "\(report.serialized())")
        let message = report["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("is not signed, and the kernel is locked down (lockdown: integrity)"), "\(message)")
        #expect(message.contains("mokutil --import"), "\(message)")
        // The kernel logs its own refusals ("Loading of unsigned module is rejected").
        #expect(try guest.check("dmesg").contains("is rejected") == false)
        #expect(try !isPatched(guest))
    }

    @Test func theSignedPatchLoadsPatchesAndUnloadsWithoutTaintE() throws {
        let guest = try holder.running()
        let taintBefore = try taint(guest)
        let report = try json(guest, "load \(SecureBootPatches.guestPath("signed"))", status: 0)
        #expect(report["patches"]?[0]?["signed"]?.boolValue == true, "\(report.serialized())")
        #expect(try isPatched(guest))
        let list = try guest.check("suture list")
        #expect(list.contains("signer: \(SecureBootPatches.trustedName) (sha256"), "\(list)")
        let tainted = try taint(guest)
        Figures.note("taint after a signed load under Secure Boot: \(taintBefore) → \(tainted)")
        #expect(tainted & 8192 == 0, "E (unsigned module) is set: \(tainted)")
        #expect(tainted & 32768 != 0, "K (live patched) is not set: \(tainted)")
        let status = try json(guest, "status", status: 0)
        let flags = (status["taint"]?["flags"]?.arrayValue ?? []).compactMap { $0["letter"]?.stringValue }
        #expect(flags.contains("K") && !flags.contains("E"), "\(status.serialized())")
        let text = try guest.check("suture status")
        #expect(text.contains("K (live patched): a livepatch module was loaded"), "\(text)")
        try guest.check("suture unload \(SecureBootPatches.moduleName)")
        #expect(try !isPatched(guest))
    }

    @Test func aPatchSignedWithAnUntrustedKeyIsRefused() throws {
        let guest = try holder.running()
        // A key whose name is in no keyring: Suture refuses.
        let other = try json(guest, "load \(SecureBootPatches.guestPath("other"))", status: 1)
        #expect(other["error"]?["code"]?.stringValue == "livepatch-signature-rejected", "\(other.serialized())")
        let message = other["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("signed by \"\(SecureBootPatches.otherName)\", but that key is in none"), "\(message)")
        #expect(try guest.check("dmesg").contains("is rejected") == false)

        // A different key under the trusted key's name: only the kernel can
        // tell, and Suture reports its refusal in the same words.
        let impostor = try json(guest, "load \(SecureBootPatches.guestPath("impostor"))", status: 1)
        #expect(impostor["error"]?["code"]?.stringValue == "livepatch-signature-rejected", "\(impostor.serialized())")
        let refusal = impostor["error"]?["message"]?.stringValue ?? ""
        #expect(refusal.hasPrefix("the kernel refused it: "), "\(refusal)")
        #expect(refusal.contains("but that key is in none of the kernel's keyrings"), "\(refusal)")
        #expect(refusal.contains("Key was rejected by service"), "\(refusal)")
        #expect(try guest.check("dmesg").contains("is rejected"))
        #expect(try !isPatched(guest))
    }

    @Test func anInstalledSignedPatchSurvivesAReboot() throws {
        let first = try holder.running()
        _ = try json(first, "install \(SecureBootPatches.guestPath("signed"))", status: 0)
        #expect(try isPatched(first))
        let release = try first.check("uname -r").trimmingWhitespace()

        let carried = try TemporaryDirectory(prefix: "suture-secureboot-store")
        defer { carried.remove() }
        let folder = Path.join(carried.path, release)
        try FileSystem.makeDirectories(folder)
        for file in try first.check("ls \(Self.store)/\(release)").split(separator: "\n") {
            try FileSystem.write(
                Path.join(folder, String(file)), try first.vm.download("\(Self.store)/\(release)/\(file)"))
        }
        let second = try holder.reboot(carrying: carried.path)
        #expect(try second.check("cat /sys/kernel/security/lockdown").contains("[integrity]"))
        #expect(try !isPatched(second))
        let outcome = try json(second, "load --all", status: 0)
        #expect(
            (outcome["results"]?.arrayValue ?? []).map { $0["status"]?.stringValue } == ["loaded"],
            "\(outcome.serialized())")
        #expect(try isPatched(second))
        #expect(try taint(second) & 8192 == 0)
        #expect(try second.check("suture list").contains("signer: \(SecureBootPatches.trustedName)"))
        let installed = try second.check("suture list --installed")
        #expect(installed.contains("; signed by \(SecureBootPatches.trustedName) (sha256, key "), "\(installed)")
    }
}
