// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Testing
import VM

@Suite struct CpioWriterTests {
    func addSample(to cpio: inout CpioWriter) throws {
        try cpio.directory("/etc", mode: 0o755)
        try cpio.file("/etc/hostname", mode: 0o644, text: "guest\n")
        try cpio.file("/deep/er/tool", mode: 0o4751, bytes: [0, 1, 2, 255])
        try cpio.symlink("/bin/sh", target: "/bin/busybox")
        try cpio.characterDevice("/dev/console", mode: 0o600, major: 5, minor: 1)
        try cpio.file("/empty", mode: 0o600, bytes: [])
    }

    func sample() throws -> [UInt8] {
        var cpio = CpioWriter()
        try addSample(to: &cpio)
        return cpio.finish().bytes
    }

    @Test func roundTripsEntriesWithModesAndParents() throws {
        let entries = try readCpio(try sample())
        #expect(
            entries.map(\.name) == [
                "etc", "etc/hostname", "deep", "deep/er", "deep/er/tool",
                "bin", "bin/sh", "dev", "dev/console", "empty",
            ])
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(byName["etc/hostname"]?.text == "guest\n")
        #expect(byName["etc/hostname"]?.mode == 0o100644)
        #expect(byName["deep/er/tool"]?.data == [0, 1, 2, 255])
        #expect(byName["deep/er/tool"]?.mode == 0o104751)
        #expect(byName["deep"]?.mode == 0o040755)
        #expect(byName["bin/sh"]?.mode == 0o120777)
        #expect(byName["bin/sh"]?.text == "/bin/busybox")
        #expect(byName["dev/console"]?.mode == 0o020600)
        #expect(byName["dev/console"].map { [$0.rdevMajor, $0.rdevMinor] } == [5, 1])
        #expect(byName["empty"]?.data == [])
    }

    @Test func isAlignedAndEndsWithTheTrailer() throws {
        let bytes = try sample()
        #expect(bytes.count % 4 == 0)
        let tail = String(decoding: bytes.suffix(16), as: UTF8.self)
        #expect(tail.contains("TRAILER!!!"))
    }

    /// GNU cpio, an independent reader, lists and extracts the archive.
    @Test func gnuCpioExtractsIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var cpio = CpioWriter()
        try cpio.file("/a/b/c.txt", mode: 0o640, text: "hello cpio")
        try cpio.symlink("/a/link", target: "b/c.txt")
        let archive = cpio.finish().bytes
        let r = try Command.run(["cpio", "-id", "--quiet"], workingDirectory: directory.path, input: archive)
        #expect(r.termination.succeeded, "\(r.stderrText)")
        let file = directory.appendingPathComponent("a/b/c.txt").path
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "hello cpio")
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o640)
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: directory.appendingPathComponent("a/link").path)
                == "b/c.txt")
    }

    @Test func streamsIntoADescriptorWithTheSameBytes() throws {
        let fd = try Kernel.memfdCreate(name: "cpio-test")
        defer { try? fd.close() }
        var cpio = CpioWriter(fd: fd.rawValue)
        try addSample(to: &cpio)
        let (size, inMemory) = cpio.finish()
        #expect(inMemory.isEmpty)
        let written = try FileSystem.read("/proc/self/fd/\(fd.rawValue)")
        #expect(written == (try sample()))
        #expect(size == written.count)
    }

    @Test func refusesDotDot() {
        var cpio = CpioWriter()
        #expect(throws: VMError.self) { try cpio.file("/tmp/../etc/passwd", mode: 0o644, text: "x") }
        _ = cpio.finish()
    }
}
