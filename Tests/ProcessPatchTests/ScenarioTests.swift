// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// Real programs, real ptrace: each fixture is built with `suture process
/// build`, run, patched, observed, reverted and observed again, and must
/// never be left stopped or traced, under every consistency model.
/// Serialized: the programs keep the two cores busy enough as it is.
@Suite(.serialized) struct ScenarioTests {
    static let models = ["stop-check", "per-thread", "hybrid"]

    /// apply → the new behaviour, status; revert → the old one; clean maps.
    /// Lines are compared among those that start like `new` (the program may
    /// print others in between).
    func applyAndRevert(
        _ target: TargetProgram, patch: String, old: String, new: String, model: String,
        applyTimeout: Double = 60, check: (JSON) -> Void = { _ in }
    ) throws {
        let kind = String(new.split(separator: " ").first ?? "")
        func same(_ lines: [String]) -> [String] { lines.filter { $0.hasPrefix(kind + " ") } }
        let apply = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "\(applyTimeout)",
        ])
        try #require(apply.result.termination.succeeded, "apply: \(apply.result.summary)")
        #expect(apply.json["model"]?.stringValue == model)
        check(apply.json)
        expectRunning(target, "after apply")
        let start = target.lines.count
        let first = target.waitForLine(from: start) { $0 == new }
        try #require(first != nil, "no \"\(new)\" after apply; last lines: \(target.lines.suffix(5))")
        let after = same(target.lines(after: first!.index, count: 8))
        #expect(!after.isEmpty && after.allSatisfy { $0 == new }, "lines after the switch: \(after)")

        let status = try statusJSON(target.pid)
        #expect(status["patches"]?.arrayValue?.count == 1)
        #expect(status["patches"]?[0]?["state"]?.stringValue == "applied", "status: \(status.serialized())")
        for f in status["patches"]?[0]?["functions"]?.arrayValue ?? [] {
            #expect(f["state"]?.stringValue == "new", "function state: \(f.serialized())")
        }
        #expect(target.sutureMappings.count >= 1)

        let revert = try Suture.json(["process", "revert", "--pid", "\(target.pid)", "--timeout", "\(applyTimeout)"])
        try #require(revert.result.termination.succeeded, "revert: \(revert.result.summary)")
        expectRunning(target, "after revert")
        let back = target.waitForLine(from: target.lines.count) { $0 == old }
        try #require(back != nil, "no \"\(old)\" after revert; last lines: \(target.lines.suffix(5))")
        let later = same(target.lines(after: back!.index, count: 8))
        #expect(!later.isEmpty && later.allSatisfy { $0 == old }, "lines after the revert: \(later)")
        #expect(try statusJSON(target.pid)["patches"]?.arrayValue?.isEmpty == true)
        #expect(target.sutureMappings.isEmpty, "left behind: \(target.sutureMappings)")
    }

    @Test(arguments: ScenarioTests.models) func tightMultithreadedLoop(_ model: String) throws {
        let fixture = try Fixture("loop")
        let patch = try fixture.patch(binary: "loop")
        let target = try TargetProgram([fixture.path("loop"), "4"])
        try #require(target.waitForLine { $0 == "value 3 2" } != nil)
        try applyAndRevert(target, patch: patch, old: "value 3 2", new: "value 5 4", model: model) { json in
            #expect(json["functions"]?.arrayValue?.count == 2, "compute and scale: \(json.serialized())")
        }
        #expect(
            !target.lines.contains { $0.hasPrefix("value") && $0 != "value 3 2" && $0 != "value 5 4" },
            "a mixed state was seen: \(target.lines.filter { $0 != "value 3 2" && $0 != "value 5 4" }.prefix(5))")
    }

    /// Threads are created and end all the time (PTRACE_O_TRACECLONE follows them).
    @Test(arguments: ScenarioTests.models) func threadsComingAndGoing(_ model: String) throws {
        let fixture = try Fixture("loop")
        let patch = try fixture.patch(binary: "loop")
        let target = try TargetProgram([fixture.path("loop"), "1", "churn"])
        try #require(target.waitForLine { $0 == "value 3 2" } != nil)
        for _ in 0..<3 {
            try applyAndRevert(target, patch: patch, old: "value 3 2", new: "value 5 4", model: model)
        }
    }

    /// A patch with new data (zeroed and initialized), a new function, new
    /// strings, a libc call the program does not import, and references to
    /// the program's global, static function and static local.
    @Test(arguments: ScenarioTests.models) func newDataAndCode(_ model: String) throws {
        let fixture = try Fixture("features")
        let patch = try fixture.patch(binary: "features")
        let target = try TargetProgram([fixture.path("features")])
        try #require(target.waitForLine { $0 == "label old 107" } != nil)
        try applyAndRevert(target, patch: patch, old: "label old 107", new: "label new 147 7 counted", model: model)
    }

    /// The patch is for a shared library the program loads, found by its build-id.
    @Test(arguments: ScenarioTests.models) func sharedLibrary(_ model: String) throws {
        let fixture = try Fixture("library")
        let patch = try fixture.patch(binary: "libcalc.so")
        let target = try TargetProgram([fixture.path("app")])
        try #require(target.waitForLine { $0 == "describe v1 6" } != nil)
        try applyAndRevert(target, patch: patch, old: "describe v1 6", new: "describe v2 15", model: model)
    }

    /// A second patch of the same functions stacks on the first; revert takes
    /// the newest off first and refuses the older one while it is covered.
    @Test(arguments: ScenarioTests.models) func patchesStack(_ model: String) throws {
        let fixture = try Fixture("loop")
        let first = try fixture.patch(binary: "loop")
        let second = try fixture.patch(diff: "patch2.diff", binary: "loop")
        let target = try TargetProgram([fixture.path("loop"), "2"])
        try #require(target.waitForLine { $0 == "value 3 2" } != nil)
        for (patch, expected) in [(first, "value 5 4"), (second, "value 9 8")] {
            let apply = try Suture.run([
                "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "60",
            ])
            try #require(apply.termination.succeeded, "\(apply.summary)")
            #expect(target.waitForLine(from: target.lines.count) { $0 == expected } != nil, "\(target.lines.suffix(3))")
        }
        let status = try statusJSON(target.pid)
        let patches = status["patches"]?.arrayValue ?? []
        try #require(patches.count == 2, "\(status.serialized())")
        #expect(patches[0]["state"]?.stringValue == "applied" && patches[1]["state"]?.stringValue == "applied")
        #expect(
            patches[0]["functions"]?.arrayValue?.allSatisfy { $0["state"]?.stringValue == "replaced by #2" } == true,
            "\(status.serialized())")
        #expect(
            patches[1]["functions"]?.arrayValue?.allSatisfy { $0["state"]?.stringValue == "new" } == true,
            "\(status.serialized())")

        let (refused, json) = try Suture.json(["process", "revert", "--pid", "\(target.pid)", first])
        #expect(refused.termination == .exited(1), "\(refused.summary)")
        #expect(json["error"]?["message"]?.stringValue?.contains("revert it first") == true, "\(refused.summary)")

        for expected in ["value 5 4", "value 3 2"] {
            let revert = try Suture.run(["process", "revert", "--pid", "\(target.pid)", "--timeout", "60"])
            try #require(revert.termination.succeeded, "\(revert.summary)")
            #expect(target.waitForLine(from: target.lines.count) { $0 == expected } != nil, "\(target.lines.suffix(3))")
        }
        expectRunning(target, "after both reverts")
        #expect(target.sutureMappings.isEmpty)
    }

    @Test(arguments: ScenarioTests.models) func threadAsleepInsideWaits(_ model: String) throws {
        let fixture = try Fixture("sleeper")
        let patch = try fixture.patch(binary: "sleeper")
        let target = try TargetProgram([fixture.path("sleeper")])
        try #require(target.waitForLine { $0 == "tick 1" } != nil)
        // Apply right after the napper went to sleep inside nap().
        let enter = target.waitForLine(from: target.lines.count) { $0 == "nap enter" }
        try #require(enter != nil)
        try applyAndRevert(target, patch: patch, old: "tick 1", new: "tick 2", model: model) { json in
            #expect((json["attempts"]?.intValue ?? 0) >= 2, "stop-check should have waited: \(json.serialized())")
        }
        if model == "stop-check" {
            // The switch came while the napper was outside nap(); its next nap was new.
            #expect(target.lines.contains("nap 2"), "the napper ran the new nap()")
        } else {
            // The napper stayed on the old code until its nap ended, while the
            // main thread already ran the new one.
            let lines = target.lines[enter!.index...]
            let tick2 = lines.firstIndex(of: "tick 2")
            let nap1 = lines.firstIndex(of: "nap 1")
            #expect(
                tick2 != nil && nap1 != nil && tick2! < nap1!,
                "tick 2 before the napper's old nap ended: \(lines.prefix(60))")
            let ended = lines.first { $0.hasPrefix("nap ") && $0 != "nap enter" }
            #expect(ended == "nap 1", "the napper's nap in progress stayed old: \(lines.prefix(60))")
        }
    }

    @Test(arguments: ScenarioTests.models) func threadAsleepForeverTimesOutCleanly(_ model: String) throws {
        let fixture = try Fixture("sleeper")
        let patch = try fixture.patch(binary: "sleeper")
        let target = try TargetProgram([fixture.path("sleeper"), "forever"])
        try #require(target.waitForLine { $0 == "nap enter" } != nil)
        Clock.sleep(seconds: 0.2)
        let started = Clock.now()
        let (result, json) = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "3",
        ])
        #expect(result.termination == .exited(1), "\(result.summary)")
        #expect(json["error"]?["code"]?.stringValue == "process-busy", "\(result.summary)")
        let message = json["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("napper") && message.contains("nap"), "names the thread and function: \(message)")
        #expect(Clock.now() - started < 60)
        expectRunning(target, "after the timeout")
        #expect(target.sutureMappings.isEmpty, "left behind: \(target.sutureMappings)")
        #expect(try statusJSON(target.pid)["patches"]?.arrayValue?.isEmpty == true)
        if model != "stop-check" {
            #expect(message.contains("back on the old code and the patch is removed"), "\(message)")
        }
        // Lines printed before the apply ended are in the pipe already: read them first.
        target.poll()
        if model != "stop-check" {
            #expect(target.lines.contains("tick 2"), "the main thread ran the new code during the transition")
        }
        let mark = target.lines.count
        let ticks = target.lines(after: mark, count: 6).filter { $0.hasPrefix("tick") }.dropFirst()
        #expect(!ticks.isEmpty && ticks.allSatisfy { $0 == "tick 1" }, "the old code again: \(ticks)")
    }

    @Test(arguments: ScenarioTests.models) func deepRecursion(_ model: String) throws {
        let fixture = try Fixture("recursion")
        let patch = try fixture.patch(binary: "recursion")
        let target = try TargetProgram([fixture.path("recursion")])
        try #require(target.waitForLine { $0 == "depth 100" } != nil)
        try applyAndRevert(target, patch: patch, old: "depth 100", new: "depth 1100", model: model)
        #expect(
            !target.lines.contains { $0.hasPrefix("bad") },
            "a deep recursion mixed old and new: \(target.lines.filter { $0.hasPrefix("bad") })")
    }

    @Test(arguments: ScenarioTests.models) func threadBlockedInRead(_ model: String) throws {
        let fixture = try Fixture("reader")
        let patch = try fixture.patch(binary: "reader")
        let target = try TargetProgram([fixture.path("reader")], input: true)
        try #require(target.waitForLine { $0.hasPrefix("ready") } != nil)
        try target.send("Hello World\n")
        try #require(target.waitForLine { $0 == "got HELLO WORLD" } != nil)
        // The reader is blocked in read(2) now (system call 0).
        let blocked = waitForThread(target.pid, named: "reader", inSyscall: 0)
        #expect(blocked, "the reader thread should be blocked in read")

        let apply = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "60",
        ])
        try #require(apply.result.termination.succeeded, "\(apply.result.summary)")
        expectRunning(target, "after apply")
        try target.send("Hello Again\n")
        #expect(target.waitForLine { $0 == "got hello again" } != nil, "lines: \(target.lines)")

        let revert = try Suture.json(["process", "revert", "--pid", "\(target.pid)", "--timeout", "60"])
        try #require(revert.result.termination.succeeded, "\(revert.result.summary)")
        expectRunning(target, "after revert")
        try target.send("Third Line\n")
        #expect(target.waitForLine { $0 == "got THIRD LINE" } != nil, "lines: \(target.lines)")
        #expect(!target.lines.contains { $0.hasPrefix("read failed") }, "lines: \(target.lines)")
        #expect(target.sutureMappings.isEmpty)
    }

    /// Waits until a thread with this name is in system call `number`.
    func waitForThread(_ pid: Int32, named name: String, inSyscall number: Int) -> Bool {
        let deadline = Clock.now() + 10
        while Clock.now() < deadline {
            for tid in (try? FileSystem.list("/proc/\(pid)/task")) ?? [] {
                let comm = FileSystem.readTextIfPresent("/proc/\(pid)/task/\(tid)/comm")?.trimmingWhitespace()
                let call = FileSystem.readTextIfPresent("/proc/\(pid)/task/\(tid)/syscall")?.split(separator: " ").first
                if comm == name && call == "\(number)" { return true }
            }
            Clock.sleep(seconds: 0.02)
        }
        return false
    }

    @Test(arguments: ScenarioTests.models) func tcpServerUnderLoad(_ model: String) throws {
        let fixture = try Fixture("server")
        let patch = try fixture.patch(binary: "server")
        let target = try TargetProgram([fixture.path("server")])
        let portLine = target.waitForLine { $0.hasPrefix("port ") }
        let port = try #require(portLine.flatMap { UInt16($0.line.dropFirst(5)) })

        let load = ClientLoad(port: port, clients: 4)
        load.start()
        defer { load.stop() }
        let sawFirst = load.waitForResponses(10, version: "v1")
        try #require(sawFirst, "no responses before the patch: \(load.summary)")

        let applyStart = Clock.now()
        let apply = try Suture.json([
            "process", "apply", "--pid", "\(target.pid)", patch, "--model", model, "--timeout", "60",
        ])
        let applyEnd = Clock.now()
        try #require(apply.result.termination.succeeded, "\(apply.result.summary)")
        expectRunning(target, "after apply")
        let sawNew = load.waitForResponses(20, version: "v2", after: applyEnd)
        #expect(sawNew, "no v2 after apply: \(load.summary)")

        let revertStart = Clock.now()
        let revert = try Suture.json(["process", "revert", "--pid", "\(target.pid)", "--timeout", "60"])
        let revertEnd = Clock.now()
        try #require(revert.result.termination.succeeded, "\(revert.result.summary)")
        expectRunning(target, "after revert")
        let sawOld = load.waitForResponses(20, version: "v1", after: revertEnd)
        #expect(sawOld, "no v1 after revert: \(load.summary)")
        load.stop()

        let records = load.records
        let failures = load.failures
        #expect(failures.count == 0, "failed requests: \(failures.prefix(5))")
        let count = records.count
        #expect(count > 50, "too little load: \(count) requests")
        let before = records.filter { $0.end < applyStart }
        let patched = records.filter { $0.start > applyEnd && $0.end < revertStart }
        let restored = records.filter { $0.start > revertEnd }
        let versions = (
            before: Set(before.map(\.version)), patched: Set(patched.map(\.version)),
            restored: Set(restored.map(\.version))
        )
        #expect(versions.before == ["v1"], "before apply: \(versions.before)")
        #expect(versions.patched == ["v2"], "between apply and revert: \(versions.patched)")
        #expect(versions.restored == ["v1"], "after revert: \(versions.restored)")
        #expect(target.sutureMappings.isEmpty)
    }
}

/// Client threads sending "GET NAME" requests to the server, one connection
/// per request, each checking its answer "hello NAME vN".
final class ClientLoad: @unchecked Sendable {
    struct Record {
        let start: Double
        let end: Double
        let version: String
    }

    let port: UInt16
    let clients: Int
    private let lock = NSLock()
    private var running = true
    private var threads: [Thread] = []
    private var done = 0
    private(set) var recordsStorage: [Record] = []
    private(set) var failuresStorage: [String] = []

    init(port: UInt16, clients: Int) {
        self.port = port
        self.clients = clients
    }

    var records: [Record] { lock.withLock { recordsStorage } }
    var failures: [String] { lock.withLock { failuresStorage } }
    var summary: String { "\(records.count) requests, \(failures.count) failures \(failures.prefix(3))" }

    func start() {
        for k in 0..<clients {
            let t = Thread { [self] in
                var i = 0
                while lock.withLock({ running }) {
                    i += 1
                    let name = "c\(k)-\(i)"
                    let start = Clock.now()
                    let outcome = ClientLoad.request(port: port, name: name)
                    let end = Clock.now()
                    lock.withLock {
                        switch outcome {
                        case .success(let version):
                            recordsStorage.append(Record(start: start, end: end, version: version))
                        case .failure(let error): failuresStorage.append("\(name): \(error.description)")
                        }
                    }
                    usleep(2000)
                }
                lock.withLock { done += 1 }
            }
            threads.append(t)
            t.start()
        }
    }

    func stop() {
        lock.withLock { running = false }
        let deadline = Clock.now() + 30
        while lock.withLock({ done < threads.count }) && Clock.now() < deadline { Clock.sleep(seconds: 0.01) }
    }

    /// Waits for `count` answers of `version` to requests started after `after`.
    func waitForResponses(_ count: Int, version: String, after: Double = 0, timeout: Double = 60) -> Bool {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline {
            if records.filter({ $0.version == version && $0.start > after }).count >= count { return true }
            Clock.sleep(seconds: 0.02)
        }
        return false
    }

    static func request(port: UInt16, name: String) -> Result<String, TestError> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return .failure(TestError("socket: \(errno)")) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return .failure(TestError("connect: \(String(cString: strerror(errno)))")) }
        let request = Array("GET \(name)\n".utf8)
        guard write(fd, request, request.count) == request.count else { return .failure(TestError("write: \(errno)")) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(TestError("read: \(String(cString: strerror(errno)))")) }
            if n == 0 { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        for version in ["v1", "v2"] where text == "hello \(name) \(version)\n" { return .success(version) }
        return .failure(TestError("unexpected answer \(text.debugDescription)"))
    }
}
