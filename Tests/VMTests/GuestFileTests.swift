// SPDX-License-Identifier: GPL-2.0-only
import Platform
import Testing
import VM

@Suite struct GuestFileTests {
    @Test func parsesFileWithAndWithoutGuestPath() throws {
        #expect(try GuestFile.parse("/etc/hosts:/tmp/h") == GuestFile(hostPath: "/etc/hosts", guestPath: "/tmp/h"))
        #expect(try GuestFile.parse("/etc/hosts") == GuestFile(hostPath: "/etc/hosts", guestPath: "/etc/hosts"))
        let relative = try GuestFile.parse("Package.swift:/root/P")
        #expect(relative.hostPath == Path.join(FileSystem.currentDirectory(), "Package.swift"))
        #expect(relative.guestPath == "/root/P")
        // Without a guest path, a relative file lands at its absolute host path.
        #expect(try GuestFile.parse("Package.swift").guestPath == relative.hostPath)
    }

    @Test func colonsInHostPathsWork() throws {
        #expect(try GuestFile.parse("/x/a:b:/tmp/c") == GuestFile(hostPath: "/x/a:b", guestPath: "/tmp/c"))
    }

    @Test func relativeGuestPathIsAUsageError() {
        #expect(throws: VMError.self) { try GuestFile.parse("/nonexistent/file:relative/path") }
    }
}
