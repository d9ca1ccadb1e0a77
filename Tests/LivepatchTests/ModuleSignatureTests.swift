// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// Module signatures as `sign-file` writes them, read back as `modinfo`
/// reports them, and the refusals the signature policy gives.
@Suite struct ModuleSignatureTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory(prefix: "suture-signature") }

    /// The host kernel's `sign-file`, from any installed kbuild package.
    static func signFile() throws -> String {
        for name in try FileSystem.list("/usr/lib").sorted() where name.hasPrefix("linux-kbuild-") {
            let path = "/usr/lib/\(name)/scripts/sign-file"
            if FileSystem.exists(path) { return path }
        }
        throw SignatureTestFailure("no /usr/lib/linux-kbuild-*/scripts/sign-file")
    }

    func run(_ argv: [String]) throws -> String {
        let result = try Command.run(argv, timeout: 60)
        guard result.termination == .exited(0) else { throw SignatureTestFailure("\(argv[0]): \(result.stderrText)") }
        return result.stdoutText
    }

    @Test(arguments: ["sha256", "sha512"])
    func readsTheSignerKeyAndHashLikeModinfo(hash: String) throws {
        let key = Path.join(directory.path, "k.key")
        let cert = Path.join(directory.path, "k.der")
        _ = try run([
            "openssl", "req", "-new", "-x509", "-nodes", "-days", "2", "-subj", "/CN=Unit test signer/",
            "-newkey", "rsa:2048", "-keyout", key, "-outform", "DER", "-out", cert,
        ])
        let serial = try run(["openssl", "x509", "-inform", "DER", "-in", cert, "-noout", "-serial"])
            .trimmingWhitespace().replacingOccurrences(of: "serial=", with: "")
        let module = try SyntheticModule.write("livepatch_signed", in: directory.path)
        let original = try FileSystem.read(module)
        #expect(ModuleSignature.read(original) == nil)
        #expect(try ModuleFile.inspect(module).signature == nil)

        _ = try run([try Self.signFile(), hash, key, cert, module])
        let signed = try FileSystem.read(module)
        let signature = try #require(ModuleSignature.read(signed))
        #expect(signature.signer == "Unit test signer")
        #expect(signature.hashAlgorithm == hash)
        // modinfo's sig_key: the serial number, colon-separated (a leading
        // zero byte of the DER integer kept, as kmod does).
        let plain = (signature.keySerial ?? "").replacingOccurrences(of: ":", with: "")
        #expect(plain.hasSuffix(serial) && plain.count - serial.count <= 2, "\(plain) vs \(serial)")
        #expect(signature.signedLength == original.count)
        #expect(signature.summary.hasPrefix("Unit test signer (\(hash), key "))
        // The loader still reads the module and sees its signature.
        #expect(try ModuleFile.inspect(module).signature == signature)

        // A garbled message: still a signature, but without a signer.
        var garbled = signed
        let info = garbled.count - ModuleSignature.marker.count - 12
        let length = garbled[(info + 8)..<(info + 12)].reduce(0) { $0 << 8 | Int($1) }
        garbled[info - length] = 0x04
        let broken = try #require(ModuleSignature.read(garbled))
        #expect(broken.signer == nil)
    }

    @Test func readsLockdownSigEnforceAndKeyrings() throws {
        let root = directory.path
        let tree = KernelTree(root: root)
        #expect(SignaturePolicy.read(tree) == SignaturePolicy(lockdown: nil, sigEnforce: nil, keys: nil))
        try FileSystem.makeDirectories(Path.directory(of: tree.lockdown))
        try FileSystem.makeDirectories(Path.directory(of: tree.sigEnforce))
        try FileSystem.makeDirectories(tree.proc)
        try FileSystem.write(tree.lockdown, "none [integrity] confidentiality\n")
        try FileSystem.write(tree.sigEnforce, "Y\n")
        try FileSystem.write(
            tree.keys,
            """
            0308c4dc I------     1 perm 1f010000     0     0 asymmetri Debian Secure Boot Signer 2022 - linux: 14011249c2: X509.rsa 0584b25f []
            26f00a20 I------     1 perm 1f010000     0     0 asymmetri Suture test MOK: f06228dfde: X509.rsa 3c3e53c4 []
            1b3e7a7d I--Q---     1 perm 3f030000     0     0 keyring   _ses: 1
            """)
        let policy = SignaturePolicy.read(tree)
        #expect(policy.lockdown == "integrity")
        #expect(policy.sigEnforce == true)
        #expect(policy.keys?.count == 2)
        #expect(policy.enforcement == "the kernel is locked down (lockdown: integrity)")
        #expect(policy.trusts("Suture test MOK") == true)
        #expect(policy.trusts("Suture test") == false)
        #expect(
            SignaturePolicy(lockdown: "none", sigEnforce: true, keys: []).enforcement == "module.sig_enforce is set")
        #expect(SignaturePolicy(lockdown: "none", sigEnforce: false, keys: []).enforcement == nil)
    }

    @Test func taintFlagsAreExplained() {
        let taint = KernelTaint(mask: 32768 + 4096)
        #expect(taint.letters == "OK")
        #expect(taint.explained.count == 2)
        #expect(taint.explained[1].hasPrefix("K (live patched): a livepatch module was loaded"))
        #expect(KernelTaint(mask: 8192).explained[0].contains("suture build --sign"))
    }
}

struct SignatureTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
