// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import SystemPackage
import Testing

/// `load` against the fake kernel with a signature policy: lockdown,
/// sig_enforce and keyrings as the real kernel exposes them.
@Suite struct SignaturePolicyLoadTests {
    let kernel: FakeKernel
    let files: TemporaryDirectory
    let log = ProgressLog()

    init() throws {
        kernel = try FakeKernel()
        files = try TemporaryDirectory(prefix: "suture-signature-policy")
        kernel.start()
    }

    func manager() -> LivepatchManager { LivepatchManager(kernel.system(uid: 0), progress: log.sink) }

    func policy(lockdown: String?, enforce: String) throws {
        let tree = kernel.tree
        try FileSystem.makeDirectories(Path.directory(of: tree.sigEnforce))
        try FileSystem.write(tree.sigEnforce, enforce + "\n")
        if let lockdown {
            try FileSystem.makeDirectories(Path.directory(of: tree.lockdown))
            try FileSystem.write(tree.lockdown, lockdown + "\n")
        }
        try FileSystem.write(
            tree.keys,
            "26f00a20 I------     1 perm 1f010000     0     0 asymmetri Suture test MOK: f06228dfde: X509.rsa 3c3e53c4 []\n"
        )
    }

    @Test func anUnsignedPatchUnderLockdownIsRefusedBeforeTheKernel() throws {
        try policy(lockdown: "none [integrity] confidentiality", enforce: "Y")
        let path = try SyntheticModule.write("livepatch_one", in: files.path)
        let error = #expect(throws: LivepatchError.self) { try manager().load(path) }
        #expect(error?.kind == .signatureRequired)
        #expect(
            error?.description.hasPrefix(
                "livepatch_one is not signed, and the kernel is locked down (lockdown: integrity), so the kernel loads only modules signed by a key it trusts: sign it"
            ) == true, "\(error?.description ?? "")")
        #expect(kernel.loads.isEmpty)
    }

    @Test func onAKernelThatDoesNotEnforceAnUnsignedLoadWarnsOfTaint() throws {
        try policy(lockdown: "[none] integrity confidentiality", enforce: "N")
        let path = try SyntheticModule.write("livepatch_one", in: files.path)
        let outcome = try manager().load(path)
        #expect(outcome.patch.state == "enabled")
        #expect(outcome.patch.signed == false)
        #expect(
            log.text.contains(
                "warning: livepatch_one is not signed: loading it taints the kernel (E, unsigned module)"),
            "\(log.text)")
        #expect(kernel.loads.count == 1)
    }

    @Test func theKernelsOwnRefusalIsReportedInTheSameWords() throws {
        try policy(lockdown: nil, enforce: "Y")
        kernel.loadFailure = (Errno(rawValue: 129), ["Loading of unsigned module is rejected"])
        // sig_enforce without lockdown: Suture refuses the unsigned file itself…
        let path = try SyntheticModule.write("livepatch_one", in: files.path)
        let own = #expect(throws: LivepatchError.self) { try manager().load(path) }
        #expect(own?.kind == .signatureRequired)
        #expect(kernel.loads.isEmpty)
        // …and a kernel that refuses what got past the check (a file
        // without sig_enforce in its view) gets the same words.
        try FileSystem.write(kernel.tree.sigEnforce, "N\n")
        let refused = #expect(throws: LivepatchError.self) { try manager().load(path) }
        #expect(refused?.kind == .signatureRequired)
        #expect(
            refused?.description.hasPrefix(
                "the kernel refused it: livepatch_one is not signed, and the kernel checks module signatures") == true,
            "\(refused?.description ?? "")")
        #expect(refused?.description.hasSuffix("Key was rejected by service") == true)
    }
}
