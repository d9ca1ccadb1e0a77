// swift-tools-version: 6.2
// SPDX-License-Identifier: GPL-2.0-only
import PackageDescription

let package = Package(
    name: "suture",
    products: [
        .executable(name: "suture", targets: ["suture"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C shims for system calls Swift cannot call directly.
        .target(name: "CSutureShims"),
        // The C templates of the livepatch module (templates/*.c), embedded
        // in the binary with #embed.
        .target(name: "CSutureTemplates", exclude: ["templates"]),
        // System calls, processes, files, JSON: the base every other target stands on.
        .target(
            name: "Platform",
            dependencies: [
                "CSutureShims",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // ELF64: raw definitions, reader, writer. Knows nothing about patching.
        .target(name: "ELF", dependencies: ["Platform"]),
        // Correlate → compare → select → emit on two objects. Shared by both patchers.
        .target(name: "PatchCore", dependencies: ["ELF", "Platform"]),
        // Running processes: ptrace, code injection, the stop-and-check model.
        .target(name: "ProcessPatch", dependencies: ["PatchCore", "ELF", "Platform"]),
        // The running kernel: load, unload and inspect live patches through sysfs and /proc.
        .target(name: "Livepatch", dependencies: ["Platform", "ELF"]),
        // Target kernels: the resolver, the pristine source-tree cache, scratch workspaces.
        .target(name: "TargetKernel", dependencies: ["Platform", "ELF"]),
        // Throwaway QEMU guests of a target kernel: initramfs, boot, guest agent.
        .target(name: "VM", dependencies: ["Platform", "TargetKernel"]),
        // Distro kernel patches: diffs to livepatch modules (klp relocations, kbuild).
        .target(
            name: "KernelPatch", dependencies: ["Platform", "ELF", "PatchCore", "TargetKernel", "CSutureTemplates"]),
        // The CLI: one file per subcommand. The only target that imports ArgumentParser.
        .executableTarget(
            name: "suture",
            dependencies: [
                "Platform", "ELF", "TargetKernel", "PatchCore", "VM", "KernelPatch", "ProcessPatch",
                "Livepatch",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // A static Swift standard library keeps the binary self-contained
            // for the VM guest. ArgumentParser pulls in FoundationEssentials,
            // whose two support libraries must then be named explicitly.
            // Not position-independent: a PIE applies some 41,000 relocations
            // at every start, which doubles start-up under TCG (130 → 60 ms
            // for `suture list` in the guest; see Benchmarks/manager-bench.sh).
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-Xclang-linker", "-no-pie"]),
                .linkedLibrary("_FoundationCollections"),
                .linkedLibrary("_FoundationCShims"),
            ],
            // `suture --version`: the version and git commit, written at build time.
            plugins: ["VersionInfo"]
        ),
        // Writes Version.swift for `suture` with scripts/version.sh before every build.
        .plugin(name: "VersionInfo", capability: .buildTool()),
        // libFuzzer target for the ELF reader (see Benchmarks/fuzz-elf.sh).
        .executableTarget(name: "ELFFuzz", dependencies: ["ELF", "Platform"]),
        // What the tests share: the suture binary under test, scratch folders, setup errors.
        .target(name: "TestSupport", dependencies: ["Platform"], path: "Tests/TestSupport"),
        // libFuzzer target for the object diff (see Benchmarks/fuzz-diff.sh).
        .executableTarget(name: "DiffFuzz", dependencies: ["PatchCore", "ELF", "Platform"]),
        .testTarget(name: "PlatformTests", dependencies: ["Platform"]),
        .testTarget(name: "ELFTests", dependencies: ["TestSupport", "ELF", "Platform"], exclude: ["Fixtures"]),
        .testTarget(
            name: "PatchCoreTests", dependencies: ["TestSupport", "PatchCore", "ELF", "Platform", "TargetKernel"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "TargetKernelTests", dependencies: ["TestSupport", "TargetKernel", "Platform", "ELF"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "KernelPatchTests",
            dependencies: [
                "TestSupport", "KernelPatch", "PatchCore", "ELF", "TargetKernel", "Platform",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(
            name: "ProcessPatchTests", dependencies: ["TestSupport", "ProcessPatch", "PatchCore", "ELF", "Platform"],
            exclude: ["Fixtures"]),
        .testTarget(name: "LivepatchTests", dependencies: ["Livepatch", "ELF", "Platform"], exclude: ["Fixtures"]),
        .testTarget(name: "VMTests", dependencies: ["VM", "TargetKernel", "Platform"], exclude: ["Fixtures"]),
        // Tests that boot the target kernel in QEMU (through the built
        // `suture` binary and the VM library). Guests run one at a time.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["VM", "TargetKernel", "Platform", "ELF", "TestSupport"],
            exclude: ["Fixtures"]
        ),
    ]
)
