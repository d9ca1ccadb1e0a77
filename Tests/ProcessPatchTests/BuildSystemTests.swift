// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// `suture process build` over real build systems: a one-step compile and
/// link, static archives made with libtool under `make -j`, CMake with Ninja
/// and ccache, Debian's hardening flags, and a Debian source package built
/// with `dpkg-buildpackage`. Each program is patched live and reverted.
@Suite(.serialized) struct BuildSystemTests {
    /// `suture process build` with a build command of the test's choosing.
    func build(
        _ fixture: Fixture, command: String, binary: String, environment: [String: String?] = [:]
    ) throws -> (json: JSON, patch: String) {
        let patch = Path.join(fixture.scratch.path, "fix.patch.o")
        let result = try Suture.run(
            [
                "process", "build", fixture.path("patch.diff"), "--source", fixture.source, "--build", command,
                "--binary", binary, "-o", patch, "--json",
            ], environment: environment)
        try #require(result.termination.succeeded, "process build: \(result.summary)")
        return (try JSON.parse(result.stdoutText), patch)
    }

    /// The loop fixture run with one spinning thread, patched and reverted.
    func patchLoop(_ fixture: Fixture, binary: String, patch: String) throws {
        let target = try TargetProgram([fixture.path(binary), "1"])
        try #require(target.waitForLine { $0 == "value 3 2" } != nil, "\(target.lines.suffix(3))")
        try ScenarioTests().applyAndRevert(
            target, patch: patch, old: "value 3 2", new: "value 5 4", model: "stop-check")
    }

    func records(_ fixture: Fixture) throws -> [JSON] {
        try JSON.parse(try FileSystem.readText(fixture.path(".suture-compile.json")))["records"]?.arrayValue ?? []
    }

    /// `cc -O2 -o loop main.c calc.c`: the wrapper compiles each source to an
    /// object of its own and links those.
    @Test func oneStepCompileAndLink() throws {
        let fixture = try Fixture("loop")
        try FileSystem.write(
            fixture.path("Makefile"), "loop: main.c calc.c calc.h\n\t$(CC) -O2 -g -o loop main.c calc.c -lpthread\n")
        let (json, patch) = try build(fixture, command: "make", binary: "loop")
        #expect(json["objects"]?.arrayValue?.compactMap { $0["source"]?.stringValue } == ["calc.c"])
        let kinds = try records(fixture).compactMap { $0["kind"]?.stringValue }
        #expect(kinds.filter { $0 == "compile" }.count == 2 && kinds.contains("link"), "\(kinds)")
        try patchLoop(fixture, binary: "loop", patch: patch)
    }

    /// calc.c goes into a libtool convenience archive (libtool compiles it
    /// twice, PIC and not, and archives one) built with `make -j2`; only the
    /// archived object is diffed.
    @Test func staticArchiveWithLibtool() throws {
        let fixture = try Fixture("loop")
        try FileSystem.write(
            fixture.path("Makefile"),
            """
            CFLAGS = -O2 -g
            loop: main.o libcalc.la
            \tlibtool --quiet --tag=CC --mode=link $(CC) $(CFLAGS) -o loop main.o libcalc.la -lpthread
            libcalc.la: calc.lo
            \tlibtool --quiet --tag=CC --mode=link $(CC) $(CFLAGS) -static -o libcalc.la calc.lo
            calc.lo: calc.c calc.h
            \tlibtool --quiet --tag=CC --mode=compile $(CC) $(CFLAGS) -c calc.c
            main.o: main.c calc.h
            \t$(CC) $(CFLAGS) -c main.c

            """)
        let (json, patch) = try build(fixture, command: "make -j2", binary: "loop")
        #expect(json["objects"]?.arrayValue?.count == 1, "\(json.serialized())")
        let all = try records(fixture)
        let calcCompiles = all.filter {
            $0["kind"]?.stringValue == "compile" && $0["arguments"]?.arrayValue?.contains(.string("calc.c")) == true
        }
        #expect(calcCompiles.count == 2, "libtool's two compiles of calc.c: \(calcCompiles)")
        #expect(all.contains { $0["kind"]?.stringValue == "archive" }, "no ar run recorded")
        try patchLoop(fixture, binary: "loop", patch: patch)
    }

    /// make's archive member rule: calc.o goes into libcalc.a and make
    /// deletes it as an intermediate file; the original is taken from the archive.
    @Test func archiveMemberRuleDeletesTheObject() throws {
        let fixture = try Fixture("loop")
        try FileSystem.write(
            fixture.path("Makefile"),
            """
            CFLAGS = -O2 -g
            loop: main.o libcalc.a
            \t$(CC) -o loop main.o libcalc.a -lpthread
            libcalc.a: libcalc.a(calc.o)
            main.o: calc.h

            """)
        let (json, patch) = try build(fixture, command: "make", binary: "loop")
        #expect(!FileSystem.exists(fixture.path("calc.o")), "make kept calc.o")
        #expect(json["objects"]?.arrayValue?.compactMap { $0["source"]?.stringValue } == ["calc.c"])
        try patchLoop(fixture, binary: "loop", patch: patch)
    }

    /// CMake configures an out-of-tree Ninja build; ccache is first on PATH.
    @Test func cmakeNinjaWithCcache() throws {
        let fixture = try Fixture("loop")
        try FileSystem.write(
            fixture.path("CMakeLists.txt"),
            """
            cmake_minimum_required(VERSION 3.13)
            project(loop C)
            find_package(Threads REQUIRED)
            add_library(calc STATIC calc.c)
            add_executable(loop main.c)
            target_link_libraries(loop calc Threads::Threads)

            """)
        let cache = Path.join(fixture.scratch.path, "ccache")
        let command =
            "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build"
        let path = "/usr/lib/ccache:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let (json, patch) = try build(
            fixture, command: command, binary: "build/loop", environment: ["PATH": path, "CCACHE_DIR": cache])
        #expect(json["objects"]?.arrayValue?.compactMap { $0["source"]?.stringValue } == ["calc.c"])
        let compilers = try records(fixture).filter { $0["kind"]?.stringValue == "compile" }
            .compactMap { $0["compiler"]?.stringValue }
        #expect(!compilers.isEmpty && compilers.allSatisfy { !$0.hasSuffix("ccache") }, "\(compilers)")
        let stats = try Command.run(
            ["ccache", "--print-stats"], environment: Command.environment(["CCACHE_DIR": cache]))
        let misses = stats.stdoutText.split(separator: "\n").first {
            $0.hasPrefix("cache_miss\t") || $0.hasPrefix("direct_cache_miss\t")
        }
        #expect(
            misses.map { !$0.hasSuffix("\t0") } == true, "the compiles did not go through ccache: \(stats.stdoutText)")
        try patchLoop(fixture, binary: "build/loop", patch: patch)
    }

    /// A step the wrapper cannot follow (LTO) is named with its command line.
    @Test func unfollowedStepIsReported() throws {
        let fixture = try Fixture("loop")
        try FileSystem.write(
            fixture.path("Makefile"), "loop: main.c calc.c\n\t$(CC) -O2 -flto -o loop main.c calc.c -lpthread\n")
        let (result, json) = try Suture.json([
            "process", "build", fixture.path("patch.diff"), "--source", fixture.source, "--build", "make",
            "--binary", "loop", "-o", Path.join(fixture.scratch.path, "fix.patch.o"),
        ])
        #expect(result.termination == .exited(1), "\(result.summary)")
        let message = json["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("-flto") && message.contains("-o loop main.c calc.c"), "\(message)")
    }

    /// Meson sets up an out-of-tree build that Ninja runs; calc.c goes
    /// into a static library (archived by gcc-ar).
    @Test func mesonNinja() throws {
        let fixture = try Fixture("loop")
        try FileSystem.write(
            fixture.path("meson.build"),
            """
            project('loop', 'c')
            calc = static_library('calc', 'calc.c')
            executable('loop', 'main.c', link_with: calc, dependencies: dependency('threads'))

            """)
        let (json, patch) = try build(
            fixture, command: "meson setup build --buildtype=debugoptimized >/dev/null && meson compile -C build",
            binary: "build/loop")
        #expect(json["objects"]?.arrayValue?.compactMap { $0["source"]?.stringValue } == ["calc.c"])
        try patchLoop(fixture, binary: "build/loop", patch: patch)
    }

    /// Debian's hardening: PIE, full RELRO (-z now, a read-only GOT) with
    /// -fno-plt (calls through GOT slots), -fstack-protector-strong,
    /// _FORTIFY_SOURCE (__snprintf_chk) and -fcf-protection (endbr64, kept
    /// at the patched entry). Patched under load.
    @Test func hardenedServerUnderLoad() throws {
        let fixture = try Fixture("server")
        try FileSystem.write(
            fixture.path("Makefile"),
            """
            CFLAGS = -g -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fcf-protection -fno-plt -fPIE
            LDFLAGS = -pie -Wl,-z,relro -Wl,-z,now
            server: server.o respond.o
            \t$(CC) $(LDFLAGS) -o $@ server.o respond.o -lpthread
            %.o: %.c respond.h
            \t$(CC) $(CFLAGS) -c -o $@ $<

            """)
        let (_, patch) = try build(fixture, command: "make", binary: "server")
        try expectHardened(fixture.path("server"))
        try serveUnderLoad([fixture.path("server")], binary: fixture.path("server"), patch: patch)
    }

    /// A Debian source package (a daemon and its client, each compiled and
    /// linked in one step) built by `dpkg-buildpackage` with full hardening;
    /// the daemon the package installs is patched under load.
    @Test func debianPackage() throws {
        let scratch = try TemporaryDirectory(prefix: "suture-process-deb")
        defer { scratch.remove() }
        let package = Path.join(scratch.path, "suture-hello-1.0")
        _ = try Command.output(["cp", "-r", Path.join(Fixture.root, "debian"), package])
        for file in ["server.c", "respond.c", "respond.h", "patch.diff"] {
            try FileSystem.copyFile(Path.join(Fixture.root, "server", file), Path.join(package, file))
        }
        let patch = Path.join(scratch.path, "fix.patch.o")
        let result = try Suture.run([
            "process", "build", Path.join(package, "patch.diff"), "--deb", package, "--binary", "hellod", "-o", patch,
            "--json",
        ])
        try #require(result.termination.succeeded, "process build --deb: \(result.summary)")
        let json = try JSON.parse(result.stdoutText)
        #expect(json["binary"]?.stringValue == "/usr/sbin/hellod", "\(json.serialized())")
        let deb = try #require(json["packages"]?.arrayValue?.first?.stringValue, "\(json.serialized())")
        // Installed into a root of its own, as dpkg would.
        let root = Path.join(scratch.path, "root")
        _ = try Command.output(["dpkg-deb", "-x", deb, root])
        let daemon = Path.join(root, "usr/sbin/hellod")
        let client = Path.join(root, "usr/bin/hello-client")
        try expectHardened(daemon)
        try serveUnderLoad([daemon], binary: daemon, patch: patch) { port, version in
            let answer = try Command.run([client, "\(port)", "deb"])
            #expect(
                answer.termination.succeeded && answer.stdoutText == "hello deb \(version)\n",
                "hello-client: \(answer.summary)")
        }
    }

    // MARK: - Helpers

    /// Full RELRO, PIE, fortified calls and endbr64 at `respond`.
    func expectHardened(_ binary: String) throws {
        let dynamic = try Command.output(["readelf", "-dW", binary])
        #expect(dynamic.contains("BIND_NOW") && dynamic.contains("PIE"), "\(dynamic)")
        let segments = try Command.output(["readelf", "-lW", binary])
        #expect(segments.contains("GNU_RELRO"))
        let imports = try Command.output(["nm", "-D", binary])
        #expect(imports.contains("__snprintf_chk") && imports.contains("__stack_chk_fail"), "\(imports)")
        #expect(try entryBytes(of: "respond", in: binary, pid: nil).starts(with: [0xf3, 0x0f, 0x1e, 0xfa]))
    }

    /// The first bytes of `function`, from the file or, with `pid`, from
    /// the running process.
    func entryBytes(of function: String, in binary: String, pid: Int32?) throws -> [UInt8] {
        let symbols = try Command.output(["nm", binary])
        let line = try #require(symbols.split(separator: "\n").first { $0.hasSuffix(" T \(function)") })
        let offset = try #require(UInt64(line.split(separator: " ")[0], radix: 16))
        guard let pid else {
            let data = try #require(FileManager.default.contents(atPath: binary))
            // The file offset of the address, from the LOAD segment holding it.
            for line in try Command.output(["readelf", "-lW", binary]).split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.first == "LOAD", f.count >= 5, let fileOffset = UInt64(f[1].dropFirst(2), radix: 16),
                    let address = UInt64(f[2].dropFirst(2), radix: 16), let size = UInt64(f[4].dropFirst(2), radix: 16),
                    offset >= address, offset + 8 <= address + size
                else { continue }
                let at = Int(fileOffset + offset - address)
                return Array(data[at..<at + 8])
            }
            throw TestError("\(function) at 0x\(String(offset, radix: 16)) is in no LOAD segment of \(binary)")
        }
        let maps = FileSystem.readTextIfPresent("/proc/\(pid)/maps") ?? ""
        let real = try FileSystem.realPath(binary)
        let first = try #require(maps.split(separator: "\n").first { $0.hasSuffix(" " + real) })
        let base = try #require(UInt64(first.split(separator: "-")[0], radix: 16))
        let fd = open("/proc/\(pid)/mem", O_RDONLY)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8)
        let n = pread(fd, &bytes, 8, off_t(base + offset))
        try #require(n == 8)
        return bytes
    }

    /// Runs the server, loads it with clients, applies the patch (v1 → v2)
    /// and reverts it; no client ever sees an error. `check` runs with each
    /// version in force.
    func serveUnderLoad(
        _ arguments: [String], binary: String, patch: String,
        check: (UInt16, String) throws -> Void = { _, _ in }
    ) throws {
        let target = try TargetProgram(arguments)
        let portLine = target.waitForLine { $0.hasPrefix("port ") }
        let port = try #require(portLine.flatMap { UInt16($0.line.dropFirst(5)) })
        let load = ClientLoad(port: port, clients: 3)
        load.start()
        defer { load.stop() }
        try #require(load.waitForResponses(10, version: "v1"), "no responses before the patch: \(load.summary)")
        try check(port, "v1")
        let apply = try Suture.run(["process", "apply", "--pid", "\(target.pid)", patch, "--timeout", "60"])
        let applied = Clock.now()
        try #require(apply.termination.succeeded, "apply: \(apply.summary)")
        expectRunning(target, "after apply")
        #expect(load.waitForResponses(20, version: "v2", after: applied), "no v2 after apply: \(load.summary)")
        // The landing pad stays; the jump follows it.
        let entry = try entryBytes(of: "respond", in: binary, pid: target.pid)
        #expect(entry.starts(with: [0xf3, 0x0f, 0x1e, 0xfa]) && entry[4] == 0xe9, "entry after apply: \(entry)")
        try check(port, "v2")
        let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "60"])
        let reverted = Clock.now()
        try #require(revert.termination.succeeded, "revert: \(revert.summary)")
        #expect(load.waitForResponses(20, version: "v1", after: reverted), "no v1 after revert: \(load.summary)")
        #expect(
            try entryBytes(of: "respond", in: binary, pid: target.pid)
                == entryBytes(of: "respond", in: binary, pid: nil))
        try check(port, "v1")
        load.stop()
        #expect(load.failures.isEmpty, "failed requests: \(load.failures.prefix(5))")
        #expect(load.records.count > 50, "too little load: \(load.records.count) requests")
        expectRunning(target, "after revert")
        #expect(target.sutureMappings.isEmpty)
    }
}
