// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TestSupport
import Testing
import VM

/// The two patches the persistence tests install, built once per test
/// process by `suture build` from the kernel fixtures, without atomic
/// replace so that both stay loaded side by side:
/// - proc-string makes /proc/loadavg end with " patched";
/// - static-data puts /proc/consoles' flags in brackets.
struct PersistencePatch: Sendable {
    /// The module's path on the host.
    let path: String
    /// The kernel's name for it, `livepatch_NAME`.
    let name: String
    let sha256: String

    /// Where the tests put it in the guest.
    var guestPath: String { "/root/\(Path.base(of: path))" }
}

actor PersistenceModules {
    static let shared = PersistenceModules()

    struct Built: Sendable {
        let procString: PersistencePatch
        let staticData: PersistencePatch
    }

    private var building: Task<Built, any Error>?
    private var directory: TemporaryDirectory?

    /// Builds both modules on first use, holding `GuestLock` (a build may
    /// boot a guest for the target's kallsyms, and must not slow down
    /// another suite's guest); later calls wait for the same build.
    /// Never call it while holding `GuestLock`.
    func modules() async throws -> Built {
        if let building { return try await building.value }
        let directory = try TemporaryDirectory(prefix: "suture-persistence-modules")
        self.directory = directory
        let path = directory.path
        let task = Task {
            try await GuestLock.withLock {
                Built(
                    procString: try Self.build("proc-string", as: "proc_string", into: path),
                    staticData: try Self.build("static-data", as: "static_data", into: path))
            }
        }
        building = task
        return try await task.value
    }

    /// What proc-string says it fixes (`suture info`, `suture uname`).
    static let procStringDescription = "Mark /proc/loadavg as patched"
    static let procStringCVEs = ["CVE-2099-0001", "CVE-2099-12345"]

    static func build(_ fixture: String, as name: String, into directory: String) throws -> PersistencePatch {
        let diff = Path.join(BuildScenarioTests.fixtures, fixture, "patch.diff")
        // proc-string says what it fixes; each goes to an -o folder that does not exist yet.
        let fixes =
            fixture == "proc-string"
            ? ["--description", procStringDescription, "--cve", procStringCVEs[0], "--cve", procStringCVEs[1]] : []
        let run = try Command.run(
            [
                try SutureBinary.checked(), "build", "--json", "--no-replace", "--name", name,
                "-o", Path.join(directory, "new", fixture),
            ] + fixes + [diff], timeout: 900)
        guard run.termination == .exited(0) else {
            throw TestError("suture build \(fixture) failed: \(run.stdoutText)\(run.stderrText)")
        }
        let report = try JSON.parse(run.stdout)
        guard let module = report["module"]?.stringValue else {
            throw TestError("suture build \(fixture) named no module: \(run.stdoutText)")
        }
        return PersistencePatch(path: module, name: "livepatch_\(name)", sha256: try SHA256.hex(file: module))
    }
}

/// The guest of the persistence suite: booted on first use, and booted
/// afresh when a test reboots with a store carried in. The tests after a
/// reboot go on in the new guest; each starts by emptying the store and
/// unloading every patch, so either guest serves. The suite boots at most
/// two guests.
final class PersistenceGuest: @unchecked Sendable {
    @TaskLocal static var shared: PersistenceGuest?

    let modules: PersistenceModules.Built
    private let lock = NSLock()
    private var guest: TestGuest?

    init(modules: PersistenceModules.Built) {
        self.modules = modules
    }

    static func current() throws -> PersistenceGuest {
        guard let shared else { throw TestError("no guest: mark the suite with .persistenceGuest") }
        return shared
    }

    /// The running guest, booted now if there is none.
    func running() throws -> TestGuest {
        try lock.withLock {
            if let guest { return guest }
            let booted = try TestGuest(try TestGuest.configuration())
            guest = booted
            return booted
        }
    }

    /// Stops the guest and boots another with `store` as its /var/lib/suture.
    func reboot(carrying store: String) throws -> TestGuest {
        try lock.withLock {
            guest?.vm.shutdown()
            guest = nil
            let booted = try TestGuest(
                try TestGuest.configuration(
                    files: [GuestFile(hostPath: store, guestPath: "/var/lib/suture")]))
            guest = booted
            return booted
        }
    }

    func shutdown() {
        lock.withLock { guest?.vm.shutdown() }
    }
}

/// Builds the modules, then holds `GuestLock` around the suite and its
/// guests (see `PersistenceGuest`).
struct PersistenceGuestTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        let modules = try await PersistenceModules.shared.modules()
        try await GuestLock.withLock {
            let holder = PersistenceGuest(modules: modules)
            defer { holder.shutdown() }
            try await PersistenceGuest.$shared.withValue(holder) { try await function() }
        }
    }
}

extension Trait where Self == PersistenceGuestTrait {
    static var persistenceGuest: Self { PersistenceGuestTrait() }
}
