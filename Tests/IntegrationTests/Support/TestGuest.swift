// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel
import TestSupport
import Testing
import VM

/// A guest booted once for a whole suite, so its tests share one boot.
///
/// ```swift
/// @Suite(.serialized, .guest(modules: ["xfs"]))
/// struct MySuite {
///     @Test func something() throws {
///         let guest = try TestGuest.current()
///         let r = try guest.run("cat /proc/cmdline")
///         #expect(r.commandStatus == 0)
///     }
/// }
/// ```
/// `.serialized` matters: the tests share the guest's state in order. The
/// guest holds `GuestLock` from boot to shutdown.
final class TestGuest: @unchecked Sendable {
    @TaskLocal static var shared: TestGuest?

    let vm: VirtualMachine

    init(_ configuration: VMConfiguration) throws {
        vm = try VirtualMachine(configuration)
    }

    /// The suite's guest; fails outside a `.guest(...)` suite.
    static func current() throws -> TestGuest {
        guard let shared else { throw TestError("no guest: mark the suite with .guest(...)") }
        return shared
    }

    /// The default target kernel, as the CLI resolves it.
    static func targetKernel() throws -> KernelRelease {
        try KernelResolver().resolve(nil)
    }

    /// A configuration for the target kernel that runs the built `suture`.
    static func configuration(
        modules: [String] = [], files: [GuestFile] = [],
        kernelArguments: [String] = []
    ) throws -> VMConfiguration {
        var configuration = VMConfiguration(kernel: try targetKernel())
        configuration.sutureBinary = try SutureBinary.checked()
        configuration.modules = modules
        configuration.files = files
        configuration.kernelArguments += kernelArguments
        return configuration
    }

    /// Runs a command with a generous time bound (TCG on a busy machine).
    func run(_ command: String, timeout: Double = 120) throws -> GuestRun {
        try vm.run(command, timeout: timeout)
    }

    /// Runs a command that must succeed without kernel trouble; returns stdout.
    @discardableResult
    func check(_ command: String, timeout: Double = 120, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> String
    {
        let r = try vm.run(command, timeout: timeout)
        #expect(r.commandStatus == 0, "\(command) failed: \(r.stderrText)", sourceLocation: sourceLocation)
        #expect(
            r.kernelProblem == nil, "\(command): kernel \(r.kernelProblem?.rawValue ?? ""):\n\(r.kernelLog)",
            sourceLocation: sourceLocation)
        return r.stdoutText
    }

    func upload(_ bytes: [UInt8], to path: String, mode: UInt32 = 0o644) throws {
        try vm.upload(bytes, to: path, mode: mode)
    }

    /// Boots, runs `body` with the guest, shuts down; holds `GuestLock` throughout.
    static func with<T>(_ configuration: VMConfiguration, _ body: (TestGuest) async throws -> T) async throws -> T {
        try await GuestLock.withLock {
            let guest = try TestGuest(configuration)
            defer { guest.vm.shutdown() }
            return try await body(guest)
        }
    }
}

/// Boots one guest around a suite (see `TestGuest`).
struct GuestTrait: SuiteTrait, TestScoping {
    var modules: [String]
    var files: [GuestFile]
    var kernelArguments: [String] = []

    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        let configuration = try TestGuest.configuration(
            modules: modules, files: files, kernelArguments: kernelArguments)
        try await TestGuest.with(configuration) { guest in
            try await TestGuest.$shared.withValue(guest) { try await function() }
        }
    }
}

extension Trait where Self == GuestTrait {
    /// Boots a guest of the target kernel once for the suite.
    static func guest(modules: [String] = [], files: [GuestFile] = [], kernelArguments: [String] = []) -> Self {
        GuestTrait(modules: modules, files: files, kernelArguments: kernelArguments)
    }
}
