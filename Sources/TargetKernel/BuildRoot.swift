// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// A minimal Debian system of one release holding one compiler, in which
/// kbuild runs for kernels that the host's compiler did not build.
///
/// Commands run in it through `unshare --mount` and `chroot`, with the
/// folders they work on (the prepared tree, a workspace, the headers)
/// bind-mounted at the same absolute paths they have on the host, so that
/// every path kbuild records (`.cmd` files, tools paths, the headers'
/// `include` lines) means the same file inside and outside.
///
/// Why `unshare` and `chroot`, both from the base system (util-linux and
/// coreutils), rather than `bwrap` or `systemd-nspawn`: Suture runs kbuild
/// as root already, so no user namespace is needed; a private mount
/// namespace makes the bind mounts vanish with the process, even when it is
/// killed, so nothing is left mounted; and nothing extra must be installed.
/// `systemd-nspawn` wants a container manager's view (machine names,
/// its own /etc handling), `bwrap` a package of its own; neither adds
/// anything kbuild needs.
public struct BuildRoot: Sendable, Equatable {
    /// The root folder: `CACHE/roots/SUITE-COMPILER`.
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// The PATH inside the root.
    public static let searchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The script `sh` runs in the new mount namespace. Arguments: the
    /// root, the folders to bind, `--`, the command. `/tmp` becomes a
    /// private tmpfs first, so folders bound below it leave nothing behind.
    static let script = """
        set -e
        root=$1; shift
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mount --rbind /dev "$root/dev"
        mount --rbind /proc "$root/proc"
        while [ "$1" != "--" ]; do
            mkdir -p "$root$1"
            mount --rbind "$1" "$root$1"
            shift
        done
        shift
        cd /
        exec chroot "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$directory" "$@"
        """

    /// `arguments` wrapped to run inside the root with `binds` (absolute
    /// host folders) mounted at the same paths, in `workingDirectory`.
    public func wrap(_ arguments: [String], binds: [String], workingDirectory: String = "/") -> [String] {
        var seen: Set<String> = []
        // Shorter paths first, so a folder bound inside another stays visible.
        let folders = binds.map { Path.absolute($0) }.filter { seen.insert($0).inserted }.sorted { $0.count < $1.count }
        return [
            "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", BuildRoot.script, "suture-root",
            path,
        ]
            + folders + ["--"] + arguments
    }

    /// The environment for a wrapped command: `changes` on top of ours, with
    /// the root's PATH and the working directory the script goes to.
    public static func environment(
        _ base: [String: String], workingDirectory: String = "/"
    ) -> [String: String] {
        var environment = base
        environment["PATH"] = searchPath
        environment["directory"] = workingDirectory
        environment["TMPDIR"] = nil
        return environment
    }

    /// Runs `arguments` inside the root.
    public func run(
        _ arguments: [String], binds: [String] = [], environment: [String: String]? = nil,
        workingDirectory: String = "/", onOutput: ((Command.Stream, UnsafeRawBufferPointer) -> Void)? = nil
    ) throws(PlatformError) -> CommandResult {
        try Command.run(
            wrap(arguments, binds: binds, workingDirectory: workingDirectory),
            environment: BuildRoot.environment(
                environment ?? Command.environment(), workingDirectory: workingDirectory),
            onOutput: onOutput)
    }

    /// The first line of `program --version` inside the root, or nil.
    public func compilerVersion(_ program: String) -> String? {
        guard FileSystem.exists(Path.join(path, "usr/bin", program)),
            let result = try? Command.run(["chroot", path, "/usr/bin/\(program)", "--version"]),
            result.termination.succeeded
        else { return nil }
        return result.stdoutText.split(separator: "\n").first.map { String($0).trimmingWhitespace() }
    }
}
