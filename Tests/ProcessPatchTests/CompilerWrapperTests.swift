// SPDX-License-Identifier: GPL-2.0-only
import Platform
import ProcessPatch
import Testing

/// What the compiler wrapper makes of each kind of invocation, and which
/// recorded objects a link takes in.
@Suite struct CompilerWrapperTests {
    let wrapper = CompilerWrapper(compiler: "/usr/bin/gcc-12", objects: "/src/.suture/objects")

    @Test func compileAndLinkIsSplit() throws {
        let plan = wrapper.plan(
            ["-O2", "-I", "inc", "-o", "prog", "a.c", "lib/b.c", "x.o", "-lm", "-Wl,-z,now", "-L", "out"],
            directory: "/src")
        try #require(plan.runs.count == 3, "\(plan.runs)")
        for (run, source) in zip(plan.runs.prefix(2), ["a.c", "lib/b.c"]) {
            #expect(run.starts(with: ["-O2", "-I", "inc"]), "\(run)")
            #expect(run.contains("-c") && run.contains(source) && run.contains("-ffunction-sections"), "\(run)")
            #expect(
                !run.contains("-lm") && !run.contains("-Wl,-z,now") && !run.contains("x.o") && !run.contains("prog"))
            #expect(!run.contains("out"), "-L's value stays on the link: \(run)")
        }
        let objects = plan.records.filter { $0.kind == .compile }.compactMap(\.object)
        #expect(objects.count == 2 && objects.allSatisfy { $0.hasPrefix("/src/.suture/objects/") }, "\(objects)")
        #expect(plan.records.compactMap(\.source) == ["/src/a.c", "/src/lib/b.c"])
        let link = try #require(plan.records.last)
        #expect(link.kind == .link && link.linkOutput == "/src/prog")
        #expect(plan.runs[2] == link.arguments)
        #expect(link.arguments.contains("-lm") && link.arguments.contains("x.o") && !link.arguments.contains("a.c"))
        // The same step builds the same object names again.
        #expect(
            wrapper.plan(["-O2", "-I", "inc", "-o", "prog", "a.c", "lib/b.c"], directory: "/src").records.compactMap(
                \.object) == objects)
    }

    @Test func otherInvocations() {
        let two = wrapper.plan(["-O2", "-c", "a.c", "b.c"], directory: "/src")
        #expect(two.runs.count == 2 && two.records.compactMap(\.object) == ["/src/a.o", "/src/b.o"])
        let one = wrapper.plan(["-c", "a.c", "-o", "a.o"], directory: "/src")
        #expect(one.runs.count == 1 && one.records.map(\.kind) == [.compile])
        for queries in [["-E", "a.c"], ["--version"], ["-dumpmachine"], ["-print-file-name=libc.so"], ["-S", "a.c"]] {
            #expect(wrapper.plan(queries, directory: "/src").records.isEmpty, "\(queries)")
        }
        #expect(wrapper.plan(["-o", "prog", "a.o", "libx.a"], directory: "/src").records.map(\.kind) == [.link])
        let lto = wrapper.plan(["-O2", "-flto", "-o", "prog", "a.c"], directory: "/src")
        #expect(lto.runs.count == 1 && lto.records.map(\.kind) == [.unsupported])
        #expect(lto.records.first?.note?.contains("-flto") == true)
        let stdin = wrapper.plan(["-x", "c", "-o", "prog", "-"], directory: "/src")
        #expect(stdin.records.map(\.kind) == [.unsupported] && stdin.runs.count == 1)
    }

    @Test func linkedObjectsFollowArchives() {
        let records = [
            CompileRecord(compiler: "/usr/bin/cc", directory: "/src", arguments: ["-c", "a.c"]),
            CompileRecord(compiler: "/usr/bin/cc", directory: "/src", arguments: ["-c", "b.c", "-o", ".libs/b.o"]),
            CompileRecord(
                compiler: "/usr/bin/ar", directory: "/src", arguments: ["cru", "libb.a", ".libs/b.o"], kind: .archive),
            CompileRecord(
                compiler: "/usr/bin/cc", directory: "/src/out",
                arguments: ["-o", "prog", "../a.o", "../libb.a", "-lm"],
                kind: .link),
        ]
        #expect(LinkedObjects.of("/src/out/prog", records: records) == ["/src/a.o", "/src/.libs/b.o"])
        #expect(LinkedObjects.of("/src/other", records: records) == nil)
    }
}
