// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform
import TargetKernel
import Testing
import VM

@Suite struct GuestImageTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        .path

    static func release() -> KernelRelease {
        KernelRelease(
            release: "9.9.0-test", image: "/nonexistent/vmlinuz", config: nil,
            modulesDirectory: Path.join(fixtures, "lib/modules/9.9.0-test"), headers: nil,
            imagePackage: nil, packageVersion: nil, livepatch: true, compiler: nil,
            sourcePackage: "linux-source-9.9", sourceVersion: nil, sourceTarball: nil, isRunning: false)
    }

    /// `/bin/ls` stands in for suture: a dynamically linked executable.
    func image(files: [GuestFile] = [], modules: [String] = []) -> GuestImage {
        GuestImage(release: Self.release(), sutureBinary: "/bin/ls", files: files, modules: modules)
    }

    func entries(_ image: GuestImage) throws -> [String: CpioEntry] {
        let list = try readCpio(try image.archive())
        return Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    @Test func carriesInitBusyboxSutureAndItsLibraries() throws {
        let e = try entries(image())
        #expect(e["init"]?.permissions == 0o755)
        #expect(e["init"]?.text.contains("vm-agent /dev/ttyS1") == true)
        #expect(e["bin/suture"]?.data == Array(try FileSystem.read("/bin/ls")))
        #expect(e["bin/busybox"]?.data.count == (try FileSystem.read("/bin/busybox")).count)
        #expect(e["bin/sh"]?.text == "/bin/busybox")
        #expect(e["sbin/modprobe"]?.text == "/bin/busybox")
        #expect(e.keys.contains { $0.hasSuffix("/libc.so.6") })
        #expect(e.keys.contains { $0.hasPrefix("lib64/ld-linux") })
        #expect(e["dev/console"].map { [$0.type, $0.rdevMajor, $0.rdevMinor] } == [0o020000, 5, 1])
        #expect(e["tmp"]?.permissions == 0o1777)
        #expect(e["etc/passwd"]?.text.contains("nobody:x:65534:65534:") == true)
        #expect(e["etc/group"]?.text.contains("root:x:0:") == true)
    }

    @Test func addsFilesAndDirectoriesKeepingModesAndStagingTmp() throws {
        let directory = try TemporaryDirectory(prefix: "guest-image")
        let tree = Path.join(directory.path, "tree")
        try FileSystem.makeDirectories(Path.join(tree, "sub"))
        try FileSystem.write(Path.join(tree, "sub/tool"), "#!/bin/sh\n", mode: 0o750)
        try FileSystem.setMode(Path.join(tree, "sub/tool"), 0o750)
        try FileSystem.symlink(target: "sub/tool", at: Path.join(tree, "link"))
        let single = Path.join(directory.path, "single")
        try FileSystem.write(single, "one", mode: 0o600)
        try FileSystem.setMode(single, 0o600)

        let e = try entries(
            image(files: [
                GuestFile(hostPath: tree, guestPath: "/opt/tree"),
                GuestFile(hostPath: single, guestPath: "/tmp/deep/single"),
                GuestFile(hostPath: single),
            ]))
        #expect(e["opt/tree/sub/tool"]?.permissions == 0o750)
        #expect(e["opt/tree/sub/tool"]?.text == "#!/bin/sh\n")
        #expect(e["opt/tree/link"]?.type == 0o120000)
        #expect(e["opt/tree/link"]?.text == "sub/tool")
        // Under /tmp: staged, for /init to copy in after mounting tmpfs.
        #expect(e["tmp/deep/single"] == nil)
        #expect(e[".suture-stage/tmp/deep/single"]?.text == "one")
        #expect(e[".suture-stage/tmp/deep/single"]?.permissions == 0o600)
        #expect(e[".suture-stage/tmp"]?.permissions == 0o1777)
        // Without a guest path: the host path.
        #expect(e[String(single.dropFirst())]?.text == "one" || e[".suture-stage" + single]?.text == "one")
    }

    @Test func refusesPathsUnderMountsAndMissingFiles() {
        #expect(throws: VMError.self) {
            try image(files: [GuestFile(hostPath: "/etc/hostname", guestPath: "/proc/x")]).archive()
        }
        #expect(throws: VMError.self) {
            try image(files: [GuestFile(hostPath: "/etc/hostname", guestPath: "/dev")]).archive()
        }
        #expect(throws: VMError.self) { try image(files: [GuestFile(hostPath: "/nonexistent/x")]).archive() }
    }

    @Test func carriesModulesWithDependenciesDecompressed() throws {
        let e = try entries(image(modules: ["demo_fs"]))
        let root = "lib/modules/9.9.0-test/"
        #expect(e[root + "kernel/fs/demo/demo-fs.ko"]?.text == "demo-fs module bytes\n")
        #expect(e[root + "kernel/lib/libdemo.ko"]?.text == "libdemo module bytes\n")
        #expect(e[root + "kernel/lib/libdemo.ko.xz"] == nil)
        #expect(e[root + "kernel/lib/demo_crc_generic.ko"]?.text == "crc module bytes\n")
        #expect(e[root + "kernel/lib/unused.ko"] == nil)
        let dep = e[root + "modules.dep"]?.text ?? ""
        #expect(dep.contains("kernel/fs/demo/demo-fs.ko: kernel/lib/libdemo.ko\n"))
        #expect(dep.contains("kernel/lib/libdemo.ko:\n"))
        #expect(!dep.contains("unused"))
        let aliases = e[root + "modules.alias"]?.text ?? ""
        #expect(aliases.contains("alias fs-demo demo_fs"))
        #expect(aliases.contains("alias demo-crc demo_crc_generic"))
        #expect(!aliases.contains("unused"))
    }

    @Test func refusesUnknownAndBuiltinModules() {
        #expect(throws: VMError.self) { try image(modules: ["nonexistent"]).archive() }
        #expect(throws: VMError.self) { try image(modules: ["builtin_thing"]).archive() }
    }
}
