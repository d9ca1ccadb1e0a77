// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// What every phase of `suture build` reads: the options, the parsed
/// diffs, the names and paths of the module, the prepared tree and its
/// configuration, and a scratch folder; plus the phase timings.
final class BuildContext {
    let options: BuildOptions
    let progress: (String) -> Void
    let diffs: [SourceDiff]
    /// `--source-diff`: applied before `diffs` and to the original side.
    let sourceDiffs: [SourceDiff]
    /// `livepatch-NAME`.
    let moduleFile: String
    /// Where the module is written.
    let outputPath: String
    /// The target's headers.
    let headers: String
    let tree: PreparedTree
    let config: KernelConfig
    let scratch: TemporaryDirectory
    private(set) var timer = PhaseTimer()
    /// Seconds spent in Suture's own processing, outside gcc and kbuild.
    private(set) var own = 0.0
    /// What was dropped or may need attention (added exports).
    var warnings: [String] = []

    /// Checks the options and prepares the pristine tree.
    init(_ options: BuildOptions, progress: @escaping (String) -> Void) throws(BuildError) {
        self.options = options
        self.progress = progress
        guard !options.diffs.isEmpty else { throw BuildError(.usage, "no diff given") }
        let start = Clock.now()
        diffs = try options.diffs.map { (d) throws(BuildError) in try SourceDiff(path: d) }
        sourceDiffs = try options.sourceDiffs.map { (d) throws(BuildError) in try SourceDiff(path: d) }
        own += Clock.now() - start
        moduleFile = "livepatch-\(try KernelBuild.moduleName(options.name ?? diffs[0].baseName))"
        // A missing output folder is made when the module is written, so a
        // failed build leaves nothing behind; a file in its way is refused now.
        let outputDirectory: String
        if FileSystem.isDirectory(options.outputDirectory) {
            outputDirectory =
                (try? FileSystem.realPath(options.outputDirectory)) ?? Path.absolute(options.outputDirectory)
        } else if FileSystem.kind(options.outputDirectory) == .missing {
            outputDirectory = Path.absolute(options.outputDirectory)
        } else {
            throw BuildError(.usage, "output folder \(options.outputDirectory) is not a folder")
        }
        outputPath = Path.join(outputDirectory, "\(moduleFile).ko")
        guard let headers = options.kernel.headers else {
            throw BuildError(
                .unsupportedChange,
                "the headers of \(options.kernel.release) are not installed (linux-headers-\(options.kernel.release))")
        }
        self.headers = headers

        progress("preparing the \(options.kernel.release) source tree")
        do {
            tree = try TreeCache(root: options.cacheRoot)
                .prepare(options.kernel, source: options.source, allowCompilerMismatch: options.allowCompilerMismatch)
                .tree
        } catch {
            let unsupported = error.kind == .compilerMismatch || error.kind == .sourceMismatch
            throw BuildError(unsupported ? .unsupportedChange : .io, error.description, cause: error)
        }
        timer.lap("prepare")
        do { scratch = try TemporaryDirectory(prefix: "suture-build") } catch {
            throw BuildError(.io, error.description, cause: error)
        }
        do { config = try tree.config() } catch {
            scratch.remove()
            throw BuildError(.io, error.description, cause: error)
        }
    }

    /// Runs one phase and records its time under `name`; `own` counts it
    /// as Suture's own processing.
    func phase<T>(_ name: String, own counted: Bool = false, _ body: () throws(BuildError) -> T) throws(BuildError) -> T
    {
        let value = counted ? try timed(body) : try body()
        timer.lap(name)
        return value
    }

    /// Runs `body` as Suture's own processing.
    func timed<T>(_ body: () throws(BuildError) -> T) throws(BuildError) -> T {
        let start = Clock.now()
        defer { own += Clock.now() - start }
        return try body()
    }
}

extension BuildError {
    /// Changes that cannot be live-patched, all at once.
    static func refused(_ refusals: [RefusedChange]) -> BuildError {
        BuildError(
            .refused,
            "\(refusals.count) change(s) cannot be live-patched; no module written:\n"
                + refusals.map { "  \($0.object): \($0.function): \($0.reason)" }.joined(separator: "\n"),
            refusals: refusals)
    }
}
