// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// What `load` checks in a module file before anything touches the kernel.
@Suite struct ModuleFileTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory(prefix: "suture-module-file") }

    @Test func readsALivepatchModule() throws {
        let path = try SyntheticModule.write(
            "livepatch_fix", in: directory.path, fileName: "livepatch-fix.ko",
            replace: true, parameters: [("replace", "int"), ("block-it", "bool")])
        let module = try ModuleFile.inspect(path)
        #expect(module.name == "livepatch_fix")
        #expect(module.isLivepatch)
        #expect(module.replace == true)
        #expect(module.vermagicRelease == "6.1.0-57-amd64")
        #expect(module.parameterTypes.map(\.name) == ["replace", "block-it"])
        try module.requireLivepatch(runningRelease: "6.1.0-57-amd64")
    }

    @Test func replaceIsUnknownWithoutSutureKey() throws {
        let module = try ModuleFile.inspect(try SyntheticModule.write("plain", in: directory.path))
        #expect(module.replace == nil)
        let no = try ModuleFile.inspect(try SyntheticModule.write("no", in: directory.path, replace: false))
        #expect(no.replace == false)
    }

    @Test func refusesAnotherRelease() throws {
        let path = try SyntheticModule.write("old", in: directory.path, release: "6.1.0-99-amd64")
        let module = try ModuleFile.inspect(path)
        let error = #expect(throws: LivepatchError.self) {
            try module.requireLivepatch(runningRelease: "6.1.0-57-amd64")
        }
        #expect(error?.kind == .vermagic)
        #expect(error?.description.contains("built for kernel 6.1.0-99-amd64") == true)
        #expect(error?.description.contains("running kernel is 6.1.0-57-amd64") == true)
    }

    @Test func refusesModulesWithoutLivepatchFlagOrVermagic() throws {
        let plain = Path.join(directory.path, "plain.ko")
        try FileSystem.write(plain, SyntheticModule.bytes([("name", "plain"), ("vermagic", "6.1.0-57-amd64 SMP ")]))
        let error = #expect(throws: LivepatchError.self) {
            try ModuleFile.inspect(plain).requireLivepatch(runningRelease: "6.1.0-57-amd64")
        }
        #expect(error?.kind == .notLivepatch)
        #expect(error?.description.contains("livepatch=Y") == true)

        let bare = Path.join(directory.path, "bare.ko")
        try FileSystem.write(bare, SyntheticModule.bytes([("name", "bare"), ("livepatch", "Y")]))
        #expect(throws: LivepatchError.self) {
            try ModuleFile.inspect(bare).requireLivepatch(runningRelease: "6.1.0-57-amd64")
        }
    }

    @Test func refusesWhatIsNotAModule() throws {
        func kind(_ path: String) -> LivepatchError.Code? {
            #expect(throws: LivepatchError.self) { try ModuleFile.inspect(path) }?.kind
        }
        #expect(kind(Path.join(directory.path, "missing.ko")) == .missingFile)
        #expect(kind(directory.path) == .notModule)

        let garbage = Path.join(directory.path, "garbage.ko")
        try FileSystem.write(garbage, (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        #expect(kind(garbage) == .notModule)

        let empty = Path.join(directory.path, "empty.ko")
        try FileSystem.write(empty, [])
        #expect(kind(empty) == .notModule)

        // A relocatable object that modpost never linked.
        let object = Path.join(directory.path, "object.o")
        try FileSystem.write(object, SyntheticModule.bytes(SyntheticModule.livepatch("object"), linkonce: false))
        #expect(kind(object) == .notModule)

        // An executable.
        #expect(kind("/bin/sh") == .notModule)
    }

    @Test func parametersAreCheckedAndQuoted() throws {
        let module = try ModuleFile.inspect(
            try SyntheticModule.write(
                "p", in: directory.path,
                parameters: [("replace", "int"), ("block_transition", "bool"), ("text", "charp")]))
        #expect(try module.parameterString([]) == "")
        #expect(try module.parameterString(["replace=1", "block-transition=Y"]) == "replace=1 block-transition=Y")
        #expect(try module.parameterString(["block_transition"]) == "block_transition")
        #expect(try module.parameterString(["text=two words", "replace="]) == "text=\"two words\" replace=\"\"")
        for bad in ["unknown=1", "text=a\"b", "=1", "te xt=1", "text=a\nb"] {
            let error = #expect(throws: LivepatchError.self) { try module.parameterString([bad]) }
            #expect(error?.kind == .parameter, "\(bad)")
        }
        let error = #expect(throws: LivepatchError.self) { try module.parameterString(["unknown=1"]) }
        #expect(
            error?.description == "p has no parameter \"unknown\" (its parameters: replace, block_transition, text)")
    }

    @Test func namesAreNormalized() {
        #expect(ModuleName.normalized("livepatch-foo") == "livepatch_foo")
        #expect(ModuleName.normalized("/x/y/livepatch-foo.ko") == "livepatch_foo")
        #expect(ModuleName.normalized("livepatch-foo.ko.xz") == "livepatch_foo")
        #expect(ModuleName.normalized("livepatch_foo") == "livepatch_foo")
    }
}
