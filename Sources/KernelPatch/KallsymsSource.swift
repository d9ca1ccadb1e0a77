// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// Where the build gets the target's kallsyms when neither `--kallsyms`
/// nor the running kernel gives them. The CLI implements it with a guest
/// of the target kernel (`suture vm --kallsyms`, cached per release), so
/// that the build itself needs no VM.
public protocol KallsymsSource: Sendable {
    /// The text of the target's `/proc/kallsyms` as root sees it, and a
    /// name for it in messages.
    func kallsyms(of kernel: KernelRelease, cacheRoot: String?, progress: (String) -> Void)
        throws(BuildError) -> (text: [UInt8], source: String)
}

extension KernelBuild {
    /// `--kallsyms`, else the running target's /proc/kallsyms, else
    /// `options.kallsymsSource`.
    static func kallsyms(_ options: BuildOptions, progress: (String) -> Void) throws(BuildError) -> KallsymsTable {
        func table(_ text: [UInt8], source: String) throws(BuildError) -> KallsymsTable {
            do { return try KallsymsTable(text: text, source: source) } catch {
                throw BuildError(.io, "reading kallsyms: \(error.description)", cause: error)
            }
        }
        if let path = options.kallsyms {
            let text: [UInt8]
            do { text = try FileSystem.read(path) } catch {
                throw BuildError(.io, "reading kallsyms: \(error.description)", cause: error)
            }
            return try table(text, source: path)
        }
        if options.kernel.isRunning, let text = try? FileSystem.read("/proc/kallsyms") {
            let running = try table(text, source: "/proc/kallsyms")
            if running.hasAddresses { return running }
        }
        guard let source = options.kallsymsSource else {
            throw BuildError(
                .usage, "no kallsyms of \(options.kernel.release): pass --kallsyms with the target's /proc/kallsyms")
        }
        let (text, name) = try source.kallsyms(of: options.kernel, cacheRoot: options.cacheRoot, progress: progress)
        return try table(text, source: name)
    }
}
