import TargetKernel
// SPDX-License-Identifier: GPL-2.0-only
import Testing

@Suite struct DebianVersionTests {
    @Test(arguments: [
        ("6.1.0-9", "6.1.0-57", -1),
        ("6.1.192-3", "6.1.192-2", 1),
        ("6.1.76-1", "6.1.192-1", -1),
        ("1.0~rc1", "1.0", -1),
        ("1:0.9", "2.0", 1),
        ("1.0", "1.0", 0),
        ("1.0a", "1.0", 1),
        ("1.0+b1", "1.0a", 1),
    ])
    func ordersLikeDpkg(a: String, b: String, expected: Int) {
        #expect(DebianVersion.compare(DebianVersion(a), DebianVersion(b)) == expected)
        #expect(DebianVersion.compare(DebianVersion(b), DebianVersion(a)) == -expected)
    }
}
