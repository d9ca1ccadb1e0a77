// SPDX-License-Identifier: GPL-2.0-only
import Testing
import VM

@Suite struct KernelLogTests {
    @Test func recognisesPanicOopsAndWarning() {
        #expect(KernelLog.problem(in: "[    2.2] Kernel panic - not syncing: sysrq triggered crash\n") == .panic)
        #expect(
            KernelLog.problem(
                in:
                    "[ 3.1] BUG: kernel NULL pointer dereference, address: 0000000000000000\n[ 3.1] Oops: 0002 [#1] PREEMPT SMP NOPTI\n"
            ) == .oops)
        #expect(KernelLog.problem(in: "[ 1.0] kernel BUG at mm/slub.c:42!\n") == .oops)
        #expect(KernelLog.problem(in: "[ 1.0] general protection fault, probably for non-canonical address\n") == .oops)
        #expect(
            KernelLog.problem(
                in: "[ 1.0] ------------[ cut here ]------------\n[ 1.0] WARNING: CPU: 0 PID: 1 at x.c:3 f+0x1/0x2\n")
                == .warning)
    }

    @Test func theWorstProblemWins() {
        let log = "WARNING: CPU: 0 PID: 1 at a.c:1\nOops: 0000 [#1]\nKernel panic - not syncing: Fatal exception\n"
        #expect(KernelLog.problem(in: log) == .panic)
    }

    @Test func ordinaryMessagesAreNoProblem() {
        let log = """
            [    0.9] PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" and report a bug
            [    1.5] AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.
            [    9.0] test_klp_livepatch: tainting kernel with TAINT_LIVEPATCH
            [    9.1] livepatch: enabling patch 'test_klp_livepatch'
            """
        #expect(KernelLog.problem(in: log) == nil)
    }

    @Test func newTaintBitsCount() {
        let died: UInt64 = 1 << 7
        let warned: UInt64 = 1 << 9
        let livepatch: UInt64 = 1 << 15
        #expect(KernelLog.problem(in: "", taintBefore: 0, taintAfter: died | livepatch) == .oops)
        #expect(KernelLog.problem(in: "", taintBefore: livepatch, taintAfter: warned | livepatch) == .warning)
        // Already set before the command: not this command's problem.
        #expect(KernelLog.problem(in: "", taintBefore: died, taintAfter: died) == nil)
        #expect(KernelLog.problem(in: "", taintBefore: 0, taintAfter: livepatch | (1 << 12) | (1 << 13)) == nil)
    }

    @Test func formatsKmsgRecordsLikeDmesg() {
        let formatted = KernelLog.format(record: "4,512,2314483,-;test: something odd\n SUBSYSTEM=x\n")
        #expect(formatted?.level == 4)
        #expect(formatted?.line == "[    2.314483] test: something odd")
        #expect(KernelLog.format(record: "14,1,123456789012,-,caller=T1;late")?.line == "[123456.789012] late")
        #expect(KernelLog.format(record: "garbage") == nil)
    }

    @Test func consoleTextDropsCarriageReturns() {
        #expect(KernelLog.consoleText(Array("a\r\nb\r\n".utf8)) == "a\nb\n")
    }

    @Test func describesTaint() {
        #expect(KernelLog.describe(taint: 0x3280) == "D W O E")
    }
}
