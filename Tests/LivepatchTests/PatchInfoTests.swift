// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// What a patch fixes, from its modinfo to `info`, the load record (list,
/// status) and the store record, against the fake kernel.
@Suite struct PatchInfoTests {
    let kernel: FakeKernel
    let files: TemporaryDirectory
    let store: PatchStore
    let log = ProgressLog()

    init() throws {
        kernel = try FakeKernel()
        files = try TemporaryDirectory(prefix: "suture-info-test")
        store = PatchStore(root: Path.join(files.path, "store"))
        kernel.start()
    }

    func manager() -> LivepatchManager { LivepatchManager(kernel.system(uid: 0), progress: log.sink) }

    static let fixes: [(String, String)] = [
        (SutureModinfo.release, SyntheticModule.release), (SutureModinfo.diff, "fix.diff:sha256:ab"),
        (SutureModinfo.description, "Fix the leak"), (SutureModinfo.cve, "CVE-2024-123456"),
        (SutureModinfo.cve, "CVE-2024-0001"), (SutureModinfo.function, "vmlinux:cmdline_proc_show,0"),
        (SutureModinfo.function, "xfs:xfs_do_thing,2"),
    ]

    func module(_ name: String, _ extra: [(String, String)], signature: [UInt8]? = nil) throws -> String {
        var bytes = try SyntheticModule.bytes(SyntheticModule.livepatch(name, replace: true) + extra)
        if let signature {
            // struct module_signature: algo, hash, id_type (2 = PKCS#7), signer_len, key_id_len, pad[3], sig_len (BE).
            let length = UInt32(signature.count)
            bytes += signature + [0, 0, 2, 0, 0, 0, 0, 0]
            bytes += [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
            bytes += Array("~Module signature appended~\n".utf8)
        }
        let path = Path.join(files.path, name + ".ko")
        try FileSystem.write(path, bytes)
        return path
    }

    @Test func infoShowsEverythingTheModuleCarries() throws {
        let info = try PatchInfo.read(try module("livepatch_fix", Self.fixes))
        #expect(info.name == "livepatch_fix")
        #expect(info.isLivepatch)
        #expect(info.release == SyntheticModule.release)
        #expect(info.description == "Fix the leak")
        #expect(info.cves == ["CVE-2024-0001", "CVE-2024-123456"])
        #expect(info.diffs == ["fix.diff:sha256:ab"])
        #expect(
            info.functions.map { "\($0.object):\($0.name),\($0.sympos)" } == [
                "vmlinux:cmdline_proc_show,0", "xfs:xfs_do_thing,2",
            ])
        #expect(info.klpObjects == ["vmlinux", "xfs"])
        #expect(info.replace == true)
        #expect(!info.signed && info.signer == nil)
        #expect(info.text.contains("  cves: CVE-2024-0001, CVE-2024-123456\n"))
        #expect(info.text.contains("  signer: unsigned\n"))
        #expect(info.json["cves"] == .strings(["CVE-2024-0001", "CVE-2024-123456"]))
    }

    /// A signature trailer whose message cannot be read: signed, signer not named.
    /// (ModuleSignatureTests read real signatures made by sign-file.)
    @Test func aGarbledSignatureIsSignedWithoutASigner() throws {
        let info = try PatchInfo.read(try module("livepatch_signed", [], signature: [0x30, 0x03, 0x02, 0x01, 0x05]))
        #expect(info.signed)
        #expect(info.signer == nil)
        #expect(info.text.contains("  signer: signed (signer not named)\n"))
        let plain = try PatchInfo.read(try module("livepatch_plain", []))
        #expect(!plain.signed)
        #expect(plain.text.contains("  signer: unsigned\n"))
    }

    @Test func loadAndInstallKeepWhatThePatchFixes() throws {
        let path = try module("livepatch_fix", Self.fixes)
        _ = try manager().load(path)
        let status = try manager().status("livepatch_fix")
        #expect(status.description == "Fix the leak")
        #expect(status.cves == ["CVE-2024-0001", "CVE-2024-123456"])
        #expect(status.json["cves"] == .strings(["CVE-2024-0001", "CVE-2024-123456"]))
        #expect(
            LivepatchText.status([status]).contains(
                "  description: Fix the leak\n  cves: CVE-2024-0001, CVE-2024-123456\n"))

        let outcome = try manager().install(path, store: store)
        #expect(outcome.entry.patch?.description == "Fix the leak")
        #expect(outcome.entry.json["cves"] == .strings(["CVE-2024-0001", "CVE-2024-123456"]))
        // Read back from the stored record.
        let stored = try #require(store.entries(SyntheticModule.release).first?.patch)
        #expect(stored.description == "Fix the leak")
        #expect(stored.cves == ["CVE-2024-0001", "CVE-2024-123456"])
    }

    @Test func cveIDsAreListedOnceByYearAndNumber() {
        #expect(
            SutureModinfo.sorted(["CVE-2024-12345", "CVE-2023-9999", "CVE-2024-2000", "CVE-2024-2000"])
                == ["CVE-2023-9999", "CVE-2024-2000", "CVE-2024-12345"])
    }

    @Test func cveIDsAreCheckedAsMITRESpellsThem() {
        for good in ["CVE-2024-0001", "CVE-1999-1234567"] { #expect(SutureModinfo.isCVE(good), "\(good)") }
        for bad in ["CVE-2024-001", "cve-2024-0001", "CVE-24-0001", "CVE-2024-00a1", "CVE-2024-0001-1", "", "CVE--"] {
            #expect(!SutureModinfo.isCVE(bad), "\(bad)")
        }
    }
}
