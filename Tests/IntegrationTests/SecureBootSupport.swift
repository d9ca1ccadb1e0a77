// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing
import VM

/// The keys and the four copies of one patch the Secure Boot suite loads,
/// made once per test process.
actor SecureBootPatches {
    static let shared = SecureBootPatches()
    /// The seeded machine owner key's name, and an untrusted key's.
    static let trustedName = "Suture test MOK"
    static let otherName = "Suture untrusted key"
    static let moduleName = "livepatch_sb_proc_string"

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().appendingPathComponent("Fixtures/secureboot").path

    static func guestPath(_ variant: String) -> String { "/root/sb-\(variant).ko" }

    struct Built: Sendable {
        /// The seeded key's certificate (DER), for the firmware.
        let certificate: String
        /// Host path → guest path of each copy.
        let uploads: [(String, String)]
    }

    private var building: Task<Built, any Error>?
    private var directory: TemporaryDirectory?

    /// Builds on first use while holding `GuestLock` (a build may boot a
    /// guest for kallsyms). Never call it while holding `GuestLock`.
    func built() async throws -> Built {
        if let building { return try await building.value }
        let directory = try TemporaryDirectory(prefix: "suture-secureboot")
        self.directory = directory
        let path = directory.path
        let task = Task { try await GuestLock.withLock { try Self.make(in: path) } }
        building = task
        return try await task.value
    }

    static func suture(_ arguments: [String], timeout: Double = 120) throws -> JSON {
        let run = try Command.run([try SutureBinary.checked()] + arguments + ["--json"], timeout: timeout)
        guard run.termination == .exited(0) else {
            throw TestError("suture \(arguments.joined(separator: " ")) failed: \(run.stdoutText)\(run.stderrText)")
        }
        return try JSON.parse(run.stdout)
    }

    static func make(in directory: String) throws -> Built {
        func file(_ name: String) -> String { Path.join(directory, name) }
        // The seeded key (Fixtures/secureboot, made by `suture key create`),
        // fixed so that the firmware variables stay cached across runs; the
        // others made now, the way a user makes a key.
        for suffix in ["key", "der"] {
            try FileSystem.write(file("mok.\(suffix)"), try FileSystem.read(Path.join(fixtures, "test-mok.\(suffix)")))
        }
        for (name, common) in [("other", otherName), ("impostor", trustedName)] {
            let made = try suture([
                "key", "create", "--key", file("\(name).key"), "--cert", file("\(name).der"), "--common-name", common,
            ])
            guard made["created"]?.boolValue == true else { throw TestError("key create: \(made.serialized())") }
        }
        let again = try suture(["key", "create", "--key", file("mok.key"), "--cert", file("mok.der")])
        guard again["created"]?.boolValue == false,
            try FileSystem.read(file("mok.key")) == FileSystem.read(Path.join(fixtures, "test-mok.key"))
        else { throw TestError("key create overwrote: \(again)") }

        let diff = Path.join(BuildScenarioTests.fixtures, "proc-string", "patch.diff")
        let report = try suture(
            [
                "build", "--sign-key", file("mok.key"), "--sign-cert", file("mok.der"), "--name", "sb_proc_string",
                "-o", directory, diff,
            ], timeout: 900)
        guard report["signed"]?.boolValue == true, report["signatureHash"]?.stringValue == "sha256",
            let module = report["module"]?.stringValue
        else { throw TestError("suture build --sign-key: \(report.serialized())") }
        let signed = try FileSystem.read(module)
        guard let unsigned = unsignedPart(signed) else { throw TestError("\(module) carries no signature") }
        try FileSystem.write(file("unsigned.ko"), unsigned)
        let signFile = Path.join(try headers(), "scripts/sign-file")
        for key in ["other", "impostor"] {
            try FileSystem.write(file("\(key).ko"), unsigned)
            let run = try Command.run([signFile, "sha256", file("\(key).key"), file("\(key).der"), file("\(key).ko")])
            guard run.termination == .exited(0) else { throw TestError("sign-file: \(run.stderrText)") }
        }
        return Built(
            certificate: file("mok.der"),
            uploads: [
                (module, guestPath("signed")), (file("unsigned.ko"), guestPath("unsigned")),
                (file("other.ko"), guestPath("other")), (file("impostor.ko"), guestPath("impostor")),
            ])
    }

    static func headers() throws -> String {
        guard let headers = try TestGuest.targetKernel().headers else { throw TestError("no headers") }
        return headers
    }

    /// The module without its appended signature: cut at the PKCS#7
    /// length that `struct module_signature` gives, before the marker.
    static func unsignedPart(_ bytes: [UInt8]) -> [UInt8]? {
        let marker = Array("~Module signature appended~\n".utf8)
        guard bytes.count > marker.count + 12, Array(bytes.suffix(marker.count)) == marker else { return nil }
        let info = bytes.count - marker.count - 12
        let length = bytes[(info + 8)..<(info + 12)].reduce(0) { $0 << 8 | Int($1) }
        guard length < info else { return nil }
        return Array(bytes[..<(info - length)])
    }
}

/// The suite's guest, booted with Secure Boot and the seeded MOK; booted
/// afresh for the reboot, with a store carried in.
final class SecureBootGuest: @unchecked Sendable {
    @TaskLocal static var shared: SecureBootGuest?

    let patches: SecureBootPatches.Built
    private let lock = NSLock()
    private var guest: TestGuest?

    init(patches: SecureBootPatches.Built) { self.patches = patches }

    static func current() throws -> SecureBootGuest {
        guard let shared else { throw TestError("no guest: mark the suite with .secureBootGuest") }
        return shared
    }

    func configuration(files: [GuestFile] = []) throws -> VMConfiguration {
        var configuration = try TestGuest.configuration(files: files)
        configuration.secureBoot = true
        configuration.machineOwnerKey = patches.certificate
        configuration.bootTimeout = 300
        return configuration
    }

    func running() throws -> TestGuest {
        try lock.withLock {
            if let guest { return guest }
            let started = Clock.now()
            let booted = try TestGuest(try configuration())
            Figures.note(
                "Secure Boot guest up (firmware variables included): \(Figures.seconds(Clock.now() - started))")
            guest = booted
            return booted
        }
    }

    func reboot(carrying store: String) throws -> TestGuest {
        try lock.withLock {
            guest?.vm.shutdown()
            guest = nil
            let booted = try TestGuest(
                try configuration(files: [GuestFile(hostPath: store, guestPath: "/var/lib/suture")]))
            guest = booted
            return booted
        }
    }

    func shutdown() { lock.withLock { guest?.vm.shutdown() } }
}

struct SecureBootGuestTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let patches = try await SecureBootPatches.shared.built()
        try await GuestLock.withLock {
            let holder = SecureBootGuest(patches: patches)
            defer { holder.shutdown() }
            try await SecureBootGuest.$shared.withValue(holder) { try await function() }
        }
    }
}

extension Trait where Self == SecureBootGuestTrait {
    static var secureBootGuest: Self { SecureBootGuestTrait() }
}
