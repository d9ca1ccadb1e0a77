// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import KernelPatch
import Platform
import TargetKernel

/// `suture build fix.diff --kernel A --kernel B …`: one module per kernel.
extension BuildCommand {
    /// Builds the diffs for every `--kernel` in turn, each module into
    /// `OUTPUT/RELEASE/`. What the kernels share is shared through the
    /// cache: a kernel's prepared tree, kallsyms and original objects, and
    /// one build root per Debian release and compiler for all its kernels.
    /// A kernel that fails does not stop the others; the exit status is 1
    /// when any failed, and the report (text or `--json`) says which.
    func runForEachKernel() throws {
        Cleanup.installSignalHandling()
        let started = Clock.now()
        let resolver = KernelResolver(catalog: CacheLocation.kernels(CacheLocation.root(cache)))
        var results: [JSON] = []
        var lines: [String] = []
        var failed = 0
        var seen: Set<String> = []
        for spec in kernel {
            let kernelStarted = Clock.now()
            do {
                let target = try resolver.resolve(spec)
                guard seen.insert(target.release).inserted else {
                    throw KernelError(.usage, "--kernel \(spec): \(target.release) is already in the list")
                }
                let folder = Path.join(output, target.release)
                do throws(PlatformError) { try FileSystem.makeDirectories(folder) } catch {
                    throw BuildError(.io, "cannot create \(folder): \(error.description)", cause: error)
                }
                Progress.say("suture: == \(target.release)")
                let outcome = try KernelBuild.run(options(for: target, output: folder)) {
                    Progress.say("suture: [\(target.release)] \($0)")
                }
                let seconds = Clock.now() - kernelStarted
                guard case .object(var pairs) = outcome.json else { continue }
                pairs.insert(("release", .string(target.release)), at: 0)
                pairs.insert(("built", .bool(true)), at: 1)
                pairs.append(("seconds", .double((seconds * 10).rounded() / 10)))
                results.append(.object(pairs))
                lines.append("\(target.release): built \(outcome.modulePath) in \(String(format1: seconds)) s")
            } catch let error as any SutureError {
                failed += 1
                results.append(
                    .object([
                        ("release", .string(spec)), ("built", .bool(false)), ("error", error.json),
                        ("seconds", .double(((Clock.now() - kernelStarted) * 10).rounded() / 10)),
                    ]))
                lines.append("\(spec): FAILED (\(error.code)): \(Printable.terminalSafe(error.description))")
            }
        }
        if json.json {
            printJSON(
                .object([
                    ("kernels", .array(results)), ("built", .int(Int64(kernel.count - failed))),
                    ("failed", .int(Int64(failed))),
                    ("seconds", .double(((Clock.now() - started) * 10).rounded() / 10)),
                ]))
        } else {
            writeStandardOutput(lines.joined(separator: "\n") + "\n")
            writeStandardOutput(
                "\(kernel.count - failed) of \(kernel.count) kernels built in \(String(format1: Clock.now() - started)) s\n"
            )
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
