// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import Testing

@Suite struct DeathSignalTests {
    /// A child started from a thread that then ends keeps running: the
    /// parent-death signal is about this process, not the spawning thread.
    @Test func childOutlivesTheThreadThatStartedIt() throws {
        final class Box: @unchecked Sendable { var child: ChildProcess? }
        let box = Box()
        let thread = Thread {
            box.child = try? ChildProcess(["sleep", "30"], stdin: .null, stdout: .null, stderr: .null)
        }
        thread.start()
        while box.child == nil && !thread.isFinished { usleep(10_000) }
        while !thread.isFinished { usleep(10_000) }
        let child = try #require(box.child)
        usleep(300_000)
        #expect(child.poll() == nil, "the child died with its spawning thread")
        child.signal(SIGKILL)
        #expect(child.wait() == .signaled(SIGKILL))
    }
}
