// SPDX-License-Identifier: GPL-2.0-only
import PatchCore
import Testing

/// How correlation names elements so that compiler renumbering does not
/// matter, and how it finds the parent of a split-off part.
@Suite struct CorrelationNameTests {
    @Test func compilerNumbersAreIgnored() {
        #expect(Correlation.normalize("foo.isra.3") == "foo.isra.#")
        #expect(Correlation.normalize("foo.isra.0") == Correlation.normalize("foo.isra.12"))
        #expect(Correlation.normalize("calls.1") == "calls.#")
        #expect(Correlation.normalize("foo.constprop.0.isra.0") == "foo.constprop.#.isra.#")
    }

    @Test func namesWithoutNumberComponentsStay() {
        #expect(Correlation.normalize("compute") == "compute")
        #expect(Correlation.normalize("foo.cold") == "foo.cold")
        // A leading number is a name, not a renumbering; mixed components stay.
        #expect(Correlation.normalize("1.foo") == "1.foo")
        #expect(Correlation.normalize("foo.v2") == "foo.v2")
        #expect(Correlation.normalize("foo..1") == "foo..#")
        #expect(Correlation.normalize("foo.") == "foo.")
    }

    @Test func parentsOfColdParts() {
        #expect(Correlation.parentName(of: "foo.cold") == "foo")
        #expect(Correlation.parentName(of: "foo.cold.7") == "foo")
        #expect(Correlation.parentName(of: "foo.isra.0.cold") == "foo.isra.0")
        #expect(Correlation.parentName(of: "foo") == nil)
        #expect(Correlation.parentName(of: "foo.coldest") == nil)
        #expect(Correlation.parentName(of: "foo.cold.x") == nil)
    }
}
