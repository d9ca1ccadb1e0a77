// SPDX-License-Identifier: GPL-2.0-only
import Platform
import Testing

/// `--verbose` shows commands as a shell would take them back.
@Suite struct ShellQuotingTests {
    @Test func plainWordsStayAndOthersAreQuoted() {
        #expect(Progress.shellQuoted("make") == "make")
        #expect(Progress.shellQuoted("O=_build") == "O=_build")
        #expect(Progress.shellQuoted("-I/tmp/x,y") == "-I/tmp/x,y")
        #expect(Progress.shellQuoted("") == "''")
        #expect(Progress.shellQuoted("two words") == "'two words'")
        #expect(Progress.shellQuoted("-DKBUILD_MODNAME=\"proc\"") == "'-DKBUILD_MODNAME=\"proc\"'")
        #expect(Progress.shellQuoted("it's") == "'it'\\''s'")
        #expect(Progress.shellQuoted("$HOME;*") == "'$HOME;*'")
    }
}
