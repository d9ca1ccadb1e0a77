// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// The target kernel's `/proc/kallsyms` as root sees it in the guest,
/// cached per release under `CacheLocation.kallsyms`.
///
/// Symbol names and their order are what later steps need (symbol
/// positions); addresses depend on where the kernel was placed. A guest
/// booted from the extracted vmlinux (PVH) has no KASLR, so they are the
/// link-time addresses there.
public enum Kallsyms {
    public static func cachePath(release: String, cacheRoot: String) -> String {
        Path.join(CacheLocation.kallsyms(cacheRoot), release)
    }

    /// The cached copy when it is newer than the kernel image, else a
    /// fresh one from a guest (then cached). `cached` tells which.
    public static func load(_ configuration: VMConfiguration, refresh: Bool = false) throws(VMError) -> (
        text: [UInt8], cached: Bool
    ) {
        let path = cachePath(release: configuration.kernel.release, cacheRoot: configuration.cacheRoot)
        if !refresh, let cache = try? FileSystem.status(path),
            let image = try? FileSystem.status(configuration.kernel.image),
            cache.st_mtim.tv_sec >= image.st_mtim.tv_sec, let text = try? FileSystem.read(path), !text.isEmpty
        {
            return (text, true)
        }
        let vm = try VirtualMachine(configuration)
        defer { vm.shutdown() }
        let text = try read(from: vm)
        if (try? FileSystem.makeDirectories(Path.directory(of: path))) != nil {
            try? FileSystem.writeAtomically(path, text)
        }
        return (text, false)
    }

    /// Reads `/proc/kallsyms` in a running guest. It is gzipped in the
    /// guest: the serial line moves a few hundred KB/s and the text is
    /// several MB.
    public static func read(from vm: VirtualMachine) throws(VMError) -> [UInt8] {
        let run = try vm.run("gzip -c /proc/kallsyms", timeout: 300)
        guard run.commandStatus == 0, run.kernelProblem == nil else {
            throw VMError(
                .guestFailed,
                "reading /proc/kallsyms in the guest failed (\(run.commandStatus.map { "status \($0)" } ?? "no status")): \(run.stderrText)\(run.kernelLog)"
            )
        }
        let result: CommandResult
        do {
            result = try Command.run(["gzip", "-dc"], input: run.stdout)
        } catch {
            throw VMError(.missingTool, "gunzip the guest's kallsyms", error)
        }
        guard result.termination.succeeded, !result.stdout.isEmpty else {
            throw VMError(
                .protocolError, "the guest's kallsyms did not arrive intact: \(Command.tail(result.stderrText))")
        }
        return result.stdout
    }
}
