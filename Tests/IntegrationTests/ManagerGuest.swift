// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Foundation
import Platform
import TestSupport
import Testing

/// `suture load/unload/list/status/force` in one guest of the target
/// kernel, with the kernel's own livepatch test modules. One boot serves
/// every scenario (see the extensions in ManagerScenarios.swift); each
/// scenario starts from a kernel without test modules, and ends with no
/// oops and no livepatch error in the kernel log.
@Suite(.serialized, .guest())
struct ManagerGuestTests {
    /// Where the modules sit in the guest; tmpfs, readable by nobody too.
    static let folder = "/tmp/klp"

    static func path(_ module: String) -> String { "\(folder)/\(module).ko" }

    let guest: TestGuest

    init() throws {
        guest = try TestGuest.current()
        try Self.upload(to: guest)
        try reset()
    }

    /// Uploads the test modules once per guest, plus two bad files.
    static func upload(to guest: TestGuest) throws {
        if try guest.run("test -e \(path("test_klp_livepatch"))").commandStatus == 0 { return }
        for (name, bytes) in try KernelTestModules.all() {
            try guest.upload(bytes, to: path(name), mode: 0o644)
        }
        let release = try guest.check("uname -r").trimmingWhitespace()
        let wrong = try withVermagicRelease(try KernelTestModules.bytes("test_klp_livepatch"), "\(release)-other")
        try guest.upload(wrong, to: path("wrong_vermagic"), mode: 0o644)
        var generator = SystemRandomNumberGenerator()
        try guest.upload(
            (0..<50_000).map { _ in UInt8.random(in: 0...255, using: &generator) }, to: path("garbage"), mode: 0o644)
    }

    /// A copy of a module whose vermagic names another release, written
    /// with Suture's ELF writer. The rest of the vermagic stays, so the
    /// kernel itself, which ignores the release of a module with symbol
    /// CRCs, would load it.
    static func withVermagicRelease(_ module: [UInt8], _ release: String) throws -> [UInt8] {
        let file = try ELFFile.parse(module, path: "module")
        var object = try RelocatableObject(file)
        guard let index = object.sections.firstIndex(where: { $0.name == ".modinfo" }) else {
            throw TestError("module has no .modinfo")
        }
        var info: [UInt8] = []
        for (key, value) in file.modinfo() {
            var text = value
            if key == "vermagic", let space = value.firstIndex(of: " ") {
                text = release + value[space...]
            }
            info += Array("\(key)=\(text)".utf8) + [0]
        }
        object.sections[index].content = .bytes(ELFBytes(info))
        return try ELFWriter.write(object)
    }

    /// Back to a kernel without test modules, and an empty kernel log.
    func reset() throws {
        _ = try guest.run(
            """
            p=/sys/module/test_klp_callbacks_busy/parameters/block_transition
            [ -e $p ] && echo N > $p
            suture unload --all >/dev/null 2>&1
            for m in test_klp_callbacks_busy test_klp_callbacks_mod test_klp_shadow_vars; do
                grep -q "^$m " /proc/modules && rmmod $m
            done
            dmesg -c >/dev/null
            true
            """)
    }

    /// No livepatch module, no patch, no test module; no oops and no
    /// livepatch error since the last reset.
    func expectClean(sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try guest.check("ls /sys/kernel/livepatch") == "", sourceLocation: sourceLocation)
        #expect(try guest.check("grep test_klp_ /proc/modules || true") == "", sourceLocation: sourceLocation)
        try expectQuietKernelLog(sourceLocation: sourceLocation)
    }

    func expectQuietKernelLog(allowing allowed: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws
    {
        let log = try guest.check("dmesg")
        for line in log.split(separator: "\n").map(String.init) {
            // `[   20.430013] livepatch: …`: the livepatch core's own messages.
            let message = line.firstRange(of: "] ").map { String(line[$0.upperBound...]) } ?? line
            let lower = message.lowercased()
            let bad =
                ["oops", "bug:", "warning:", "call trace", "general protection"].contains { lower.contains($0) }
                || (lower.hasPrefix("livepatch: ") && ["fail", "error", "invalid"].contains { lower.contains($0) })
            if bad && !allowed.contains(where: { line.contains($0) }) {
                Issue.record("kernel log: \(line)", sourceLocation: sourceLocation)
            }
        }
    }

    /// `suture list --json` (or status) parsed.
    func patches(_ command: String = "suture list --json") throws -> [JSON] {
        let json = try JSON.parse(try guest.check(command))
        return try #require(json["patches"]?.arrayValue)
    }

    func names(_ patches: [JSON]) -> [String] {
        patches.compactMap { $0["name"]?.stringValue }
    }
}
