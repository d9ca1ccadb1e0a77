// SPDX-License-Identifier: GPL-2.0-only
import PatchCore
import Testing

/// Names whose numbers come from `__COUNTER__`, and only those, are
/// compared without their numbers.
@Suite struct CounterNameTests {
    @Test func btfIdsAndDynamicDebugLoseTheirCounter() {
        #expect(CounterNames.normalize("__BTF_ID__struct__sock__316268") == "__BTF_ID__struct__sock__#")
        #expect(
            CounterNames.normalize("__BTF_ID__struct__sock__316269")
                == CounterNames.normalize("__BTF_ID__struct__sock__316268"))
        #expect(CounterNames.normalize("__UNIQUE_ID_ddebug417.2") == "__UNIQUE_ID_ddebug#.2")
        #expect(
            CounterNames.normalize("__UNIQUE_ID_ddebug417.2") != CounterNames.normalize("__UNIQUE_ID_ddebug419.7"),
            "gcc's own number after the dot stays")
    }

    @Test func otherUniqueIdsKeepTheirNumbers() {
        for name in [
            "__UNIQUE_ID___addressable_foo123", "__UNIQUE_ID_modinfo42", "__BTF_ID__", "__UNIQUE_ID_ddebug",
            "calls.1", "foo",
        ] {
            #expect(CounterNames.normalize(name) == name, "\(name)")
        }
    }
}
