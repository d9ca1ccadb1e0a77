// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Glibc
import Platform
import TargetKernel
import VM

/// What `suture vm` boots.
enum GuestImageKind: String, ExpressibleByArgument, CaseIterable {
    case busybox
    case debian
}

/// `suture vm --image debian`, `--keep`, `--stop`, `--list`.
extension VMCommand {
    func validateDebian() throws {
        let actions = (stop != nil ? 1 : 0) + (list ? 1 : 0) + (keep != nil ? 1 : 0) + (command.isEmpty ? 0 : 1)
        if actions != 1 {
            throw ValidationError("give exactly one of: --image debian -- COMMAND, --keep NAME, --stop NAME, --list")
        }
        if keepDisk && stop == nil { throw ValidationError("--keep-disk goes with --stop NAME") }
        if (stop != nil || list) && (!append.isEmpty || kernel.kernel != nil) {
            throw ValidationError("--stop and --list take no --kernel or --append")
        }
        if (keep != nil || !command.isEmpty) && image != .debian {
            throw ValidationError("--keep needs --image debian")
        }
        if kallsyms || shell || secureBoot || mok != nil || !add.isEmpty || !modules.isEmpty {
            throw ValidationError(
                "--kallsyms, --shell, --secure-boot, --add and --modules are for the busybox guest; copy files into a Debian guest with ssh"
            )
        }
        if let keep, !DebianGuest.validName(keep) {
            throw ValidationError("\(keep): a guest name is letters, digits, '-', '_' and '.'")
        }
        if let memory, memory < 256 { throw ValidationError("--memory must be at least 256 (MB) for --image debian") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if append.contains(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) }) {
            throw ValidationError("--append takes one parameter without spaces (repeat it for more)")
        }
    }

    func runDebian() throws -> Int32 {
        if list {
            let guests = DebianGuest.list()
            if output.json {
                printJSON(.object([("guests", .array(guests.map(\.json)))]))
            } else if guests.isEmpty {
                print("no kept Debian guests")
            } else {
                for guest in guests {
                    let state =
                        guest.isAlive ? "running, pid \(guest.pid), ssh port \(guest.sshPort)" : "stopped (disk kept)"
                    print("\(guest.name)\t\(guest.release)\t\(state)")
                }
            }
            return 0
        }
        if let stop {
            let found = try DebianGuest.stop(name: stop, keepDisk: keepDisk)
            if output.json {
                printJSON(
                    .object([
                        ("name", .string(stop)), ("stopped", .bool(found)), ("diskKept", .bool(keepDisk && found)),
                    ]))
            } else {
                Progress.say(found ? "suture: guest \(stop) stopped" : "suture: no guest \(stop)")
            }
            return found ? 0 : 1
        }
        let release: KernelRelease
        do {
            release = try KernelResolver().resolve(kernel.kernel)
        } catch {
            throw VMError(error.exitStatus == 64 ? .usage : .badInput, error.description)
        }
        var options = DebianGuestOptions(kernel: release, name: keep ?? "run-\(getpid())")
        options.keep = keep != nil
        options.memoryMB = memory ?? 1024
        options.accelerator = accel
        options.kernelArguments = append
        let chatty = isatty(2) == 1
        if chatty { Progress.say("suture: booting a Debian guest of \(release.release) …") }
        if options.keep {
            let (guest, _) = try DebianGuest.start(options)
            if output.json {
                printJSON(guest.json)
            } else {
                Progress.say("suture: guest \(guest.name) up in \(seconds(guest.bootSeconds)) s; log in with:")
                print(guest.sshCommand)
            }
            return 0
        }
        return try runDebianCommand(options)
    }

    private func runDebianCommand(_ options: DebianGuestOptions) throws -> Int32 {
        let (guest, process) = try DebianGuest.start(options)
        let token = Cleanup.register { TreeCache.removeEventually(guest.directory) }
        defer {
            process?.signal(SIGKILL)
            process?.wait()
            Cleanup.unregister(token)
            TreeCache.removeEventually(guest.directory)
        }
        if isatty(2) == 1 { Progress.say("suture: guest up in \(seconds(guest.bootSeconds)) s") }
        let commandLine = command.count == 1 ? command[0] : command.map(Self.shellQuoted).joined(separator: " ")
        let json = output.json
        let result = try guest.run(commandLine, timeout: timeout) { stream, bytes in
            guard !json else { return }
            try? FileSystem.writeAll(fd: stream == .stdout ? 1 : 2, bytes, context: "output")
        }
        // The kernel's state after the command: new taint, console reports.
        let after = process?.poll() == nil ? try? guest.run("cat /proc/sys/kernel/tainted", timeout: 30) : nil
        let taintAfter = after.flatMap { $0.termination.succeeded ? UInt64($0.stdoutText.trimmingWhitespace()) : nil }
        let console = guest.consoleText
        var problem = KernelLog.problem(in: console, taintBefore: 0, taintAfter: guest.bootTaint)
        if let more = KernelLog.problem(
            in: "", taintBefore: guest.bootTaint, taintAfter: taintAfter ?? guest.bootTaint),
            problem.map({ $0 < more }) ?? true
        {
            problem = more
        }
        var status = result.termination.status
        if problem != nil {
            status = 126
        } else if result.timedOut {
            status = 124
        } else if taintAfter == nil {
            status = 125  // the guest did not answer after the command
        }
        if json {
            printJSON(
                .object([
                    ("exitStatus", .integer(status)), ("stdout", .string(result.stdoutText)),
                    ("stderr", .string(result.stderrText)),
                    ("kernelProblem", problem.map { .string($0.rawValue) } ?? .null),
                    ("release", .string(guest.release)), ("suite", .string(guest.suite)),
                    ("bootSeconds", .double((guest.bootSeconds * 1000).rounded() / 1000)),
                    ("runSeconds", .double((result.seconds * 1000).rounded() / 1000)),
                ]))
        } else if let problem {
            Progress.warn("suture: guest kernel \(problem.rawValue); console:")
            Progress.warn(Command.tail(console.trimmingWhitespace(), lines: 40))
        } else if result.timedOut {
            Progress.warn("suture: the command did not finish within \(seconds(timeout ?? 0)) s and was killed")
        } else if taintAfter == nil {
            Progress.warn("suture: the guest stopped answering; \(guest.failureDetail())")
        }
        return status
    }
}

private func seconds(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
