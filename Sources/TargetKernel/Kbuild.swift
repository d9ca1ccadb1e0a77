// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// How Suture runs kbuild: the one place that builds the `make` command
/// line, so that `prepare` and every later compile pass the same variables
/// and kbuild never rebuilds the prepared parts for a changed command.
///
/// The tree is built out of tree (`O=_build`, a folder inside the source
/// folder). Kbuild then names the source `..` everywhere, so a workspace
/// whose source folder is an overlay of the pristine one produces the same
/// command lines, and the same code, as the pristine tree would.
public struct Kbuild: Sendable, Equatable {
    /// The object folder's name inside the source folder.
    public static let objectFolder = "_build"
    /// Flags every workspace compile adds, so each function and data item
    /// lands in its own section for the object diff.
    public static let defaultCFlags = ["-ffunction-sections", "-fdata-sections"]

    /// The kbuild source folder (`srctree`).
    public var sourceDirectory: String
    /// `CC`, e.g. `gcc-12`: the compiler that built the kernel.
    public var compiler: String
    /// `KERNELRELEASE`, e.g. `6.1.0-57-amd64`, as the distro passes it, so
    /// `UTS_RELEASE` and module vermagic match the target kernel.
    public var kernelRelease: String
    /// `KBUILD_BUILD_USER`/`HOST` from the headers' compile.h, if known.
    public var buildUser: String?
    public var buildHost: String?
    /// The build root make runs in, for a kernel another release's
    /// compiler built; nil runs it on the host.
    public var root: BuildRoot?
    /// Host folders the build root must see (at the same paths): the tree
    /// or workspace, and what it links to.
    public var binds: [String]

    public init(
        sourceDirectory: String, compiler: String, kernelRelease: String,
        buildUser: String? = nil, buildHost: String? = nil, root: BuildRoot? = nil, binds: [String] = []
    ) {
        self.sourceDirectory = sourceDirectory
        self.compiler = compiler
        self.kernelRelease = kernelRelease
        self.buildUser = buildUser
        self.buildHost = buildHost
        self.root = root
        self.binds = binds
    }

    /// `srctree/_build`.
    public var buildDirectory: String { Path.join(sourceDirectory, Kbuild.objectFolder) }

    /// The processors this process may use (`sysconf(_SC_NPROCESSORS_ONLN)`).
    public static var processors: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The full `make` argument vector for `targets`.
    public func arguments(_ targets: [String], cflags: [String], jobs: Int) -> [String] {
        var args = [
            "make", "-C", sourceDirectory, "O=\(Kbuild.objectFolder)", "-j\(max(1, jobs))",
            "CC=\(compiler)", "KERNELRELEASE=\(kernelRelease)",
        ]
        // A root holds only gcc-N: host tools (fixdep, objtool) use it too.
        if root != nil { args.append("HOSTCC=\(compiler)") }
        if !cflags.isEmpty { args.append("KCFLAGS=\(cflags.joined(separator: " "))") }
        return args + targets
    }

    /// The command that runs: `arguments`, inside the root when there is one.
    public func command(_ targets: [String], cflags: [String], jobs: Int) -> [String] {
        let args = arguments(targets, cflags: cflags, jobs: jobs)
        guard let root else { return args }
        return root.wrap(args, binds: binds.isEmpty ? [sourceDirectory] : binds)
    }

    /// Our environment without anything that would steer kbuild elsewhere.
    public func environment() -> [String: String] {
        var changes: [String: String?] = [
            "LC_ALL": "C", "MAKEFLAGS": nil, "MFLAGS": nil, "MAKELEVEL": nil, "KBUILD_OUTPUT": nil,
            "O": nil, "ARCH": nil, "CROSS_COMPILE": nil, "KCFLAGS": nil, "KBUILD_EXTMOD": nil, "M": nil,
        ]
        if let buildUser { changes["KBUILD_BUILD_USER"] = buildUser }
        if let buildHost { changes["KBUILD_BUILD_HOST"] = buildHost }
        let environment = Command.environment(changes)
        return root == nil ? environment : BuildRoot.environment(environment)
    }

    /// Runs make, reports progress on stderr every few seconds as `phase`,
    /// and throws `failure` with the tail of make's output when it fails.
    @discardableResult
    public func make(
        _ targets: [String], cflags: [String], jobs: Int = Kbuild.processors,
        phase: String, failure: KernelError.Code
    ) throws(KernelError) -> CommandResult {
        let progress = MakeProgress(phase: phase)
        let result: CommandResult
        do {
            result = try Command.run(command(targets, cflags: cflags, jobs: jobs), environment: environment()) {
                _, chunk in
                progress.observe(chunk)
            }
        } catch {
            throw KernelError(failure, "cannot run make for \(phase): \(error.description)")
        }
        guard result.termination.succeeded else {
            var tail = Command.tail(result.stderrText, lines: 25)
            if tail.isEmpty { tail = Command.tail(result.stdoutText, lines: 25) }
            throw KernelError(
                failure,
                "make \(targets.joined(separator: " ")) in \(sourceDirectory) failed (\(result.termination)):\n\(tail)")
        }
        return result
    }

    // MARK: - compile.h

    /// `LINUX_COMPILE_BY` and `LINUX_COMPILE_HOST` from a headers tree.
    static func buildIdentity(headers: String?) -> (user: String?, host: String?) {
        guard let headers,
            let text = FileSystem.readTextIfPresent(Path.join(headers, "include/generated/compile.h"))
        else {
            return (nil, nil)
        }
        func value(_ name: String) -> String? {
            for line in text.split(separator: "\n") where line.hasPrefix("#define \(name)") {
                if let open = line.firstIndex(of: "\""), let close = line.lastIndex(of: "\""), open < close {
                    return String(line[line.index(after: open)..<close])
                }
            }
            return nil
        }
        return (value("LINUX_COMPILE_BY"), value("LINUX_COMPILE_HOST"))
    }
}

/// Prints a line about a long make run every few seconds.
final class MakeProgress: @unchecked Sendable {
    private let phase: String
    private var steps = 0
    private var lastLine = ""
    private var partial: [UInt8] = []
    private var lastReport = Clock.now()
    private let started = Clock.now()

    init(phase: String) { self.phase = phase }

    func observe(_ chunk: UnsafeRawBufferPointer) {
        for byte in chunk {
            if byte == 10 {
                let line = String(decoding: partial, as: UTF8.self)
                if line.hasPrefix("  ") {
                    steps += 1
                    lastLine = line.trimmingWhitespace()
                }
                partial.removeAll(keepingCapacity: true)
            } else {
                partial.append(byte)
            }
        }
        let now = Clock.now()
        if now - lastReport >= 3 {
            lastReport = now
            Progress.say("suture: \(phase): \(Int(now - started)) s, \(steps) steps, at \(lastLine)")
        }
    }
}

/// What kbuild recorded about one target in its `.NAME.cmd` file: the
/// command line and, through fixdep, the compiler's own dependency list.
public struct KbuildCommandFile: Sendable, Equatable {
    /// The target, relative to the object folder: `fs/proc/meminfo.o`.
    public let target: String
    /// The exact command kbuild ran.
    public let command: String
    /// The primary source, relative to the source folder: `fs/proc/meminfo.c`.
    public let source: String?
    /// Every file the compiler read, relative to the source folder
    /// (generated files start with `_build/`); system headers stay absolute.
    public let dependencies: [String]

    /// The `.cmd` file kbuild writes for `target` under `buildDirectory`.
    public static func path(for target: String, buildDirectory: String) -> String {
        let dir = Path.directory(of: target)
        let name = ".\(Path.base(of: target)).cmd"
        return dir == "." ? Path.join(buildDirectory, name) : Path.join(buildDirectory, dir, name)
    }

    /// Reads and parses the `.cmd` file of `target`.
    public init(target: String, buildDirectory: String) throws(KernelError) {
        let file = KbuildCommandFile.path(for: target, buildDirectory: buildDirectory)
        guard let text = FileSystem.readTextIfPresent(file) else {
            throw KernelError(
                .compileFailed, "no kbuild record \(file) for \(target); was it compiled in this workspace?")
        }
        try self.init(target: target, text: text, file: file)
    }

    public init(target: String, text: String, file: String) throws(KernelError) {
        self.target = target
        var command: String?
        var source: String?
        var deps: [String] = []
        var inDeps = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = Substring(raw)
            if inDeps {
                var item = line.trimmingCharacters(in: " ")
                let continues = item.hasSuffix("\\")
                if continues { item = String(item.dropLast()).trimmingWhitespace() }
                if !item.isEmpty && !item.hasPrefix("$(wildcard") {
                    deps.append(KbuildCommandFile.sourceRelative(item))
                }
                if !continues { inDeps = false }
                continue
            }
            for prefix in ["cmd_\(target) := ", "savedcmd_\(target) := "] where line.hasPrefix(prefix) {
                command = String(line.dropFirst(prefix.count))
            }
            if line.hasPrefix("source_\(target) := ") {
                source = KbuildCommandFile.sourceRelative(
                    String(line.dropFirst("source_\(target) := ".count)).trimmingWhitespace())
            }
            if line.hasPrefix("deps_\(target) := ") {
                inDeps = line.hasSuffix("\\")
            }
        }
        guard let command else {
            throw KernelError(.compileFailed, "\(file): no command line for \(target)")
        }
        self.command = command
        self.source = source
        dependencies = deps
    }

    /// `../kernel/sched/rt.c` → `kernel/sched/rt.c`; `include/generated/x.h`
    /// (relative to the object folder) → `_build/include/generated/x.h`.
    static func sourceRelative(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("../") { return String(path.dropFirst(3)) }
        return Path.join(Kbuild.objectFolder, path)
    }
}
