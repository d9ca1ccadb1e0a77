// SPDX-License-Identifier: GPL-2.0-only
import KernelPatch
import Testing

/// `patch`'s report of where and how each hunk applied, as `suture build
/// --fuzz` shows it.
@Suite struct AppliedHunkTests {
    @Test func fuzzAndOffsetsAreReadPerFile() {
        let output = """
            patching file fs/proc/version.c
            Hunk #1 succeeded at 10 with fuzz 1 (offset -6 lines).
            patching file fs/proc/loadavg.c
            Hunk #1 succeeded at 20 (offset 1 line).
            Hunk #2 succeeded at 40 with fuzz 2.
            patching file fs/proc/uptime.c
            """
        let hunks = AppliedHunk.parse(output, diff: "/tmp/fix.diff")
        #expect(
            hunks == [
                AppliedHunk(diff: "/tmp/fix.diff", file: "fs/proc/version.c", hunk: 1, line: 10, fuzz: 1, offset: -6),
                AppliedHunk(diff: "/tmp/fix.diff", file: "fs/proc/loadavg.c", hunk: 1, line: 20, fuzz: 0, offset: 1),
                AppliedHunk(diff: "/tmp/fix.diff", file: "fs/proc/loadavg.c", hunk: 2, line: 40, fuzz: 2, offset: 0),
            ])
        #expect(
            hunks[0].description
                == "fix.diff: fs/proc/version.c hunk #1 applied at line 10 (with fuzz 1, offset -6 lines)")
    }

    @Test func exactHunksAreNotReported() {
        #expect(AppliedHunk.parse("patching file fs/proc/version.c\n", diff: "d").isEmpty)
    }
}
