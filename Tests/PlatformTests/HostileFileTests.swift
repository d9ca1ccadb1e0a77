// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import Testing

/// Files and text that an attacker controls: planted symbolic links, FIFOs,
/// devices, huge outputs and control characters.
@Suite struct HostileFileTests {
    /// The temporary name used to be `PATH.tmp.PID`: a symbolic link planted
    /// there made an atomic write overwrite its target.
    @Test func atomicWriteIgnoresAPlantedSymlink() throws {
        let dir = try TemporaryDirectory(prefix: "suture-atomic")
        defer { dir.remove() }
        let victim = Path.join(dir.path, "victim")
        try FileSystem.write(victim, "precious\n")
        let path = Path.join(dir.path, "out.o")
        for guess in ["\(path).tmp.\(getpid())", "\(path).tmp", Path.join(dir.path, ".out.o.tmp.\(getpid())")] {
            try FileSystem.symlink(target: victim, at: guess)
        }
        try FileSystem.writeAtomically(path, Array("new\n".utf8), mode: 0o600)
        #expect(try FileSystem.readText(victim) == "precious\n", "the write followed a planted symlink")
        #expect(try FileSystem.readText(path) == "new\n")
        #expect(try FileSystem.status(path).st_mode & 0o7777 == 0o600)
        // Only the output and the planted links: no temporary left behind.
        #expect(try FileSystem.list(dir.path).count == 5)
    }

    /// The target itself being a symbolic link is replaced, not followed.
    @Test func atomicWriteReplacesALinkAtTheTarget() throws {
        let dir = try TemporaryDirectory(prefix: "suture-atomic")
        defer { dir.remove() }
        let victim = Path.join(dir.path, "victim")
        try FileSystem.write(victim, "precious\n")
        let path = Path.join(dir.path, "out")
        try FileSystem.symlink(target: victim, at: path)
        try AtomicFile.write(path, Array("new\n".utf8), durable: true)
        #expect(try FileSystem.readText(victim) == "precious\n")
        #expect(FileSystem.kind(path) == .file)
        #expect(try FileSystem.status(path).st_mode & 0o7777 == 0o644)
    }

    @Test func temporaryNamesAreNotPredictable() {
        let names = Set((0..<50).map { _ in AtomicFile.temporaryName(near: "x") })
        #expect(names.count == 50)
    }

    /// A FIFO used to hang every reader; now it is refused at once.
    @Test func fifoIsRefusedWithoutBlocking() throws {
        let dir = try TemporaryDirectory(prefix: "suture-fifo")
        defer { dir.remove() }
        let fifo = Path.join(dir.path, "fifo")
        try #require(mkfifo(fifo, 0o600) == 0)
        let started = Clock.now()
        let error = #expect(throws: PlatformError.self) { try RegularFile.read(fifo) }
        #expect(error?.description.contains("FIFO") == true, "\(String(describing: error))")
        #expect(throws: PlatformError.self) { try MappedFile(path: fifo) }
        #expect(Clock.now() - started < 2)
    }

    @Test func devicesAndHugeFilesAreRefused() throws {
        let error = #expect(throws: PlatformError.self) { try RegularFile.read("/dev/zero") }
        #expect(error?.description.contains("device") == true)
        let dir = try TemporaryDirectory(prefix: "suture-big")
        defer { dir.remove() }
        let big = Path.join(dir.path, "big")
        try FileSystem.write(big, [UInt8](repeating: 1, count: 4097))
        #expect(throws: PlatformError.self) { try RegularFile.read(big, limit: 4096) }
        #expect(try RegularFile.read(big, limit: 4097).bytes.count == 4097)
        let link = Path.join(dir.path, "link")
        try FileSystem.symlink(target: big, at: link)
        #expect(throws: PlatformError.self) { try RegularFile.read(link, followLinks: false) }
    }

    /// A decompression bomb: the tool is stopped once its output passes the limit.
    @Test func commandOutputIsCapped() throws {
        let started = Clock.now()
        let error = #expect(throws: PlatformError.self) {
            try Command.run(["cat", "/dev/zero"], outputLimit: 1 << 20)
        }
        #expect(error?.kind == .invalidData)
        #expect(Clock.now() - started < 10)
        #expect(try Command.run(["printf", "abc"], outputLimit: 3).stdoutText == "abc")
    }

    @Test func sealedMemoryCannotChange() throws {
        let sealed = try SealedMemory(name: "t", bytes: Array("module".utf8))
        #expect(sealed.seals & SealedMemory.allSeals == SealedMemory.allSeals)
        let n = Array("evil".utf8).withUnsafeBytes { pwrite(sealed.fd.rawValue, $0.baseAddress, $0.count, 0) }
        #expect(n == -1)
        #expect(ftruncate(sealed.fd.rawValue, 0) == -1)
        #expect(try sealed.contents() == Array("module".utf8))
    }

    @Test func controlCharactersAreEscaped() {
        #expect(Printable.escaped("ok name") == "ok name")
        #expect(Printable.escaped("a\u{1b}[2Jb\n\u{7}") == "a\\x1b[2Jb\\n\\x07")
        #expect(Printable.escaped("x\u{9b}31m\u{202e}") == "x\\u{009b}31m\\u{202e}")
        #expect(Printable.escaped("naïve") == "naïve")
        #expect(!Printable.needsEscaping("plain"))
    }
}
