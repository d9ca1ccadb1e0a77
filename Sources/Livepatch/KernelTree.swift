// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Where Suture finds the running kernel's interfaces: `/sys`, `/proc`,
/// `/dev/kmsg`, and its own runtime folder for the lock and load records.
///
/// Every kernel path the Livepatch target reads or writes comes from here,
/// so unit tests point it at a fake tree.
public struct KernelTree: Sendable, Equatable {
    /// The sysfs mount, `/sys`.
    public var sys: String
    /// The procfs mount, `/proc`.
    public var proc: String
    /// The kernel log device, `/dev/kmsg`.
    public var kmsg: String
    /// Suture's runtime folder, `/run/suture`: gone at reboot, like the
    /// modules it describes.
    public var run: String

    public init(sys: String, proc: String, kmsg: String, run: String) {
        self.sys = sys
        self.proc = proc
        self.kmsg = kmsg
        self.run = run
    }

    /// The real interfaces of the running kernel.
    public static let live = KernelTree(sys: "/sys", proc: "/proc", kmsg: "/dev/kmsg", run: "/run/suture")

    /// The same layout below `root`, for fake trees in tests.
    public init(root: String) {
        self.init(
            sys: Path.join(root, "sys"), proc: Path.join(root, "proc"),
            kmsg: Path.join(root, "dev/kmsg"), run: Path.join(root, "run/suture"))
    }

    // MARK: - sysfs

    /// `/sys/kernel/livepatch`: present when the kernel has `CONFIG_LIVEPATCH`.
    public var livepatch: String { Path.join(sys, "kernel/livepatch") }

    /// `/sys/kernel/livepatch/NAME`: one patch, named after its module.
    public func patch(_ name: String) -> String { Path.join(livepatch, name) }

    /// `/sys/module/NAME`.
    public func module(_ name: String) -> String { Path.join(sys, "module", name) }

    /// `/sys/kernel/security/lockdown`: `none [integrity] confidentiality`.
    public var lockdown: String { Path.join(sys, "kernel/security/lockdown") }

    /// `/sys/module/module/parameters/sig_enforce`: `Y` when only signed modules load.
    public var sigEnforce: String { Path.join(sys, "module/module/parameters/sig_enforce") }

    // MARK: - procfs

    /// `/proc/keys`: the keys the caller may view, the kernel's keyrings' among them.
    public var keys: String { Path.join(proc, "keys") }

    /// `/proc/modules`: loaded modules, newest first.
    public var modules: String { Path.join(proc, "modules") }

    /// `/proc/sys/kernel/tainted`.
    public var tainted: String { Path.join(proc, "sys/kernel/tainted") }

    /// `/proc/sys/kernel/osrelease`: what `uname -r` prints.
    public var osRelease: String { Path.join(proc, "sys/kernel/osrelease") }

    // MARK: - Suture's runtime state

    /// The lock that keeps two suture processes from acting on the kernel at once.
    public var lock: String { Path.join(run, "kernel.lock") }

    /// Load records, one per module Suture loaded (see `LoadRecord`).
    public var records: String { Path.join(run, "loaded") }
}
