// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// The store's files, records and the text and JSON made of them.
@Suite struct PatchStoreTests {
    let files: TemporaryDirectory
    let store: PatchStore

    init() throws {
        files = try TemporaryDirectory(prefix: "suture-store-test")
        store = PatchStore(root: files.path)
    }

    static let record = {
        var record = InstalledPatch(
            name: "livepatch_fix", release: "6.1.0-57-amd64", sequence: 2, installedAt: "2025-01-02T03:04:05Z",
            source: "/root/livepatch-fix.ko", moduleFile: "livepatch_fix.ko",
            sha256: String(repeating: "ab", count: 32), size: 4096, replace: false,
            vermagic: "6.1.0-57-amd64 SMP preempt mod_unload modversions ")
        record.signer = "DKMS module signing key (sha256, key 49:63:CD)"
        return record
    }()

    @Test func recordsRoundTripThroughTheirJSON() throws {
        let text = Self.record.json.serialized(pretty: true) + "\n"
        try Golden.check(text, "record.json")
        let folder = store.directory(Self.record.release)
        try FileSystem.makeDirectories(folder)
        try FileSystem.write(Path.join(folder, "livepatch_fix.json"), text)
        try FileSystem.write(Path.join(folder, "livepatch_fix.ko"), [1, 2, 3])
        let entry = try #require(store.entries(Self.record.release, verify: false).first)
        #expect(entry.patch == Self.record)
        #expect(entry.problem == nil)
        #expect(entry.isIntact)
        // Verifying compares the digest, which these bytes do not have.
        #expect(store.entries(Self.record.release).first?.problem?.contains("was altered") == true)
    }

    @Test(arguments: [
        ("[1]", "is not a JSON object"),
        ("{}", "has no format"),
        ("{\"format\": 2}", "has format 2, newer than this suture reads (1)"),
    ])
    func unreadableRecordsSayWhy(text: String, problem: String) throws {
        let folder = store.directory("r")
        try FileSystem.makeDirectories(folder)
        try FileSystem.write(Path.join(folder, "livepatch_x.json"), text)
        let entries = store.entries("r")
        #expect(entries.count == 1)
        #expect(entries.first?.problem == "the record \(folder)/livepatch_x.json \(problem)")
    }

    @Test(arguments: [
        ("sha256", JSON.string("ABC"), "has no valid sha256"),
        ("moduleFile", JSON.string("../../etc/passwd"), "names a module file outside its folder: ../../etc/passwd"),
        ("sequence", JSON.integer(-1), "has no sequence"),
        ("name", JSON.null, "has no name"),
    ])
    func invalidFieldsAreRefused(key: String, value: JSON, problem: String) throws {
        let fields = (Self.record.json.objectValue ?? []).map { $0.0 == key ? ($0.0, value) : $0 }
        let folder = store.directory(Self.record.release)
        try FileSystem.makeDirectories(folder)
        try FileSystem.write(Path.join(folder, "livepatch_fix.json"), JSON.object(fields).serialized())
        #expect(store.entries(Self.record.release).first?.problem?.hasSuffix(problem) == true)
    }

    @Test func misplacedRecordsAreDamaged() throws {
        let folder = store.directory("6.1.0-1-amd64")
        try FileSystem.makeDirectories(folder)
        try FileSystem.write(Path.join(folder, "livepatch_fix.json"), Self.record.json.serialized())
        try FileSystem.write(Path.join(folder, "livepatch_fix.ko"), [1])
        try FileSystem.write(Path.join(folder, "livepatch_other.json"), Self.record.json.serialized())
        try FileSystem.write(Path.join(folder, ".livepatch_fix.json.tmp.77"), "half")
        let problems = store.entries("6.1.0-1-amd64").map { "\($0.name): \($0.problem ?? "-")" }
        #expect(
            problems == [
                "livepatch_fix: the record of livepatch_fix is for kernel 6.1.0-57-amd64, but it sits in the folder of 6.1.0-1-amd64",
                "livepatch_other: the record livepatch_other.json is for livepatch_fix, not livepatch_other",
            ])
    }

    @Test func theEnvironmentMovesTheStore() {
        #expect(PatchStore().root == "/var/lib/suture")
        #expect(PatchStore.rootVariable == "SUTURE_STORE")
        setenv("SUTURE_STORE", "relative/store", 1)
        defer { unsetenv("SUTURE_STORE") }
        #expect(PatchStore.configured().root == Path.join(FileManager.default.currentDirectoryPath, "relative/store"))
    }

    // MARK: - Output

    static func entry(_ name: String, sequence: Int, problem: String? = nil) -> StoreEntry {
        var patch = record
        patch.name = name
        patch.sequence = sequence
        patch.moduleFile = name + ".ko"
        patch.source = "/root/\(name).ko"
        return StoreEntry(
            name: name, module: "/var/lib/suture/6.1.0-57-amd64/\(name).ko", patch: patch, problem: problem)
    }

    static let report = InstalledReport(
        release: "6.1.0-57-amd64", running: true, directory: "/var/lib/suture/6.1.0-57-amd64",
        installed: [
            InstalledStatus(entry: entry("livepatch_old", sequence: 1), state: .superseded, loadedFrom: nil),
            InstalledStatus(
                entry: entry("livepatch_fix", sequence: 2), state: .loaded,
                loadedFrom: "/var/lib/suture/6.1.0-57-amd64/livepatch_fix.ko"),
            InstalledStatus(entry: entry("livepatch_net", sequence: 3), state: .notLoaded, loadedFrom: nil),
            InstalledStatus(
                entry: entry("livepatch_mm", sequence: 4), state: .otherBuildLoaded, loadedFrom: "/root/mm.ko"),
            InstalledStatus(
                entry: StoreEntry(
                    name: "livepatch_bad", module: nil, patch: nil,
                    problem:
                        "the record /var/lib/suture/6.1.0-57-amd64/livepatch_bad.json is not valid JSON: unexpected end at offset 9"
                ),
                state: .corrupt, loadedFrom: nil),
        ],
        notInstalled: ["livepatch_adhoc"])

    @Test func installedReportText() throws {
        try Golden.check(StoreText.installed(Self.report), "installed.txt")
        try Golden.check(Self.report.json.serialized(pretty: true) + "\n", "installed.json")
        let empty = InstalledReport(
            release: "6.1.0-1-amd64", running: false, directory: "/s/6.1.0-1-amd64", installed: [], notInstalled: [])
        #expect(StoreText.installed(empty) == "no live patches are installed for 6.1.0-1-amd64 (/s/6.1.0-1-amd64)\n")
    }

    @Test func loadAllText() throws {
        let outcome = LoadAllOutcome(
            release: "6.1.0-57-amd64", directory: "/var/lib/suture/6.1.0-57-amd64",
            results: [
                LoadAllResult(name: "livepatch_old", status: .superseded),
                LoadAllResult(name: "livepatch_fix", status: .loaded, seconds: 1.234),
                LoadAllResult(name: "livepatch_net", status: .alreadyLoaded),
                LoadAllResult(name: "livepatch_quick", status: .loaded, seconds: 0.004),
                LoadAllResult(
                    name: "livepatch_bad", status: .failed,
                    error: LivepatchError(
                        .corruptStore, "livepatch_bad is damaged in the store: its module /x is missing")),
            ])
        try Golden.check(StoreText.loadAll(outcome), "load-all.txt")
        try Golden.check(JSON.array(outcome.results.map(\.json)).serialized(pretty: true) + "\n", "load-all.json")
        #expect(outcome.failed.map(\.name) == ["livepatch_bad"])
    }
}
