// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform
import Synchronization

/// Files the ELF tests run over: a deterministic sample of the installed
/// kernel's modules, and objects compiled by gcc from the fixtures here.
enum Samples {
    static let fixtures = Path.join(Path.directory(of: #filePath), "Fixtures")

    /// Every `.ko` of the newest installed kernel, sorted.
    static func allModules() -> [String] {
        let base = "/lib/modules"
        guard let releases = try? FileSystem.list(base) else { return [] }
        var best: [String] = []
        for release in releases {
            let dir = Path.join(base, release, "kernel")
            guard FileSystem.isDirectory(dir) else { continue }
            let found =
                (try? Command.output(["find", dir, "-name", "*.ko*", "-type", "f"]))?
                .split(separator: "\n").map(String.init).sorted() ?? []
            if found.count > best.count { best = found }
        }
        return best
    }

    /// About `count` modules spread over the whole tree, plus the 3 largest.
    static func moduleSample(count: Int = 40) -> [String] {
        let all = allModules()
        guard !all.isEmpty else { return [] }
        let step = max(all.count / count, 1)
        var picked = stride(from: 0, to: all.count, by: step).map { all[$0] }
        let bySize = all.sorted { (size($0)) > (size($1)) }
        picked += bySize.prefix(3)
        return Array(Set(picked)).sorted()
    }

    static func size(_ path: String) -> Int64 {
        (try? FileSystem.status(path)).map { Int64($0.st_size) } ?? 0
    }

    private static let compiledOnce = Mutex<[String]?>(nil)

    /// The fixtures compiled with gcc/g++ in a temporary folder, once per
    /// test run: objects with function and data sections, a C++ object with
    /// COMDAT groups, an executable and a shared object.
    static func compiled() throws -> [String] {
        try compiledOnce.withLock { cached in
            if let cached { return cached }
            let dir = try TemporaryDirectory(prefix: "suture-elf-tests")
            // Kept for the whole test process.
            Cleanup.register { dir.remove() }
            let c = Path.join(fixtures, "sample.c")
            let cpp = Path.join(fixtures, "groups.cpp")
            let out = { (name: String) in Path.join(dir.path, name) }
            let jobs: [[String]] = [
                ["gcc", "-O2", "-c", "-ffunction-sections", "-fdata-sections", "-o", out("sample.o"), c],
                ["gcc", "-O0", "-g", "-c", "-o", out("sample-debug.o"), c],
                ["gcc", "-O2", "-fPIC", "-c", "-ffunction-sections", "-o", out("sample-pic.o"), c],
                ["g++", "-O0", "-c", "-o", out("groups.o"), cpp],
                ["gcc", "-O2", "-o", out("sample-exe"), c, "-DWITH_MAIN"],
                ["gcc", "-O2", "-shared", "-fPIC", "-o", out("libsample.so"), c],
            ]
            for job in jobs {
                _ = try Command.output(job)
            }
            let files = ["sample.o", "sample-debug.o", "sample-pic.o", "groups.o", "sample-exe", "libsample.so"].map(
                out)
            cached = files
            return files
        }
    }
}
