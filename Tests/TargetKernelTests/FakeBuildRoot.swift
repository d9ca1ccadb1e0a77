// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// A ready build root in `CACHE/roots/NAME` that is no Debian system: a
/// static busybox as `/bin/sh` and a compiler script that prints `prints`.
struct FakeBuildRoot {
    let path: String

    init(cache: String, name: String, program: String, prints: String) throws {
        let package = String(name.drop { $0 != "-" }.dropFirst())
        path = Path.join(CacheLocation.roots(cache), name)
        try FileSystem.makeDirectories(Path.join(path, "bin"))
        try FileSystem.makeDirectories(Path.join(path, "usr/bin"))
        if !FileSystem.exists(Path.join(path, "bin/sh")) {
            try FileSystem.copyFile("/bin/busybox", Path.join(path, "bin/sh"))
            try FileSystem.setMode(Path.join(path, "bin/sh"), 0o755)
        }
        let compiler = Path.join(path, "usr/bin", program)
        try? FileSystem.removeFile(compiler)
        try FileSystem.write(compiler, "#!/bin/sh\necho '\(prints)'\n", mode: 0o755)
        try FileSystem.write(
            Path.join(path, BuildRoots.recordName),
            "Suite: fake\nCompiler: \(prints)\nPackages: \(BuildRoots.packages(compiler: package).joined(separator: ","))\n"
        )
    }
}
