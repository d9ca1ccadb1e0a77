// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Where Suture keeps what it derives once and reuses: prepared kernel
/// trees, kallsyms of target kernels, the KVM probe result.
///
/// The default is `/var/cache/suture`; `SUTURE_CACHE` or a command's
/// `--cache DIR` overrides it.
public enum CacheLocation {
    public static let defaultRoot = "/var/cache/suture"

    /// The cache root for an explicit override, else the environment, else the default.
    public static func root(_ override: String? = nil) -> String {
        if let override, !override.isEmpty { return Path.absolute(override) }
        if let env = FileSystem.environment("SUTURE_CACHE"), !env.isEmpty { return Path.absolute(env) }
        return defaultRoot
    }

    /// `ROOT/trees`: prepared source trees, one per release and config hash.
    public static func trees(_ root: String) -> String { Path.join(root, "trees") }

    /// `ROOT/kallsyms`: the guest's /proc/kallsyms per release.
    public static func kallsyms(_ root: String) -> String { Path.join(root, "kallsyms") }

    /// `ROOT/kernels`: kernels fetched from Debian's archive, one folder per release.
    public static func kernels(_ root: String) -> String { Path.join(root, "kernels") }

    /// `ROOT/roots`: build roots, one Debian release and compiler each (`trixie-gcc-14`).
    public static func roots(_ root: String) -> String { Path.join(root, "roots") }

    /// `ROOT/vm`: VM-related cached facts, such as whether KVM works.
    public static func vm(_ root: String) -> String { Path.join(root, "vm") }
}
