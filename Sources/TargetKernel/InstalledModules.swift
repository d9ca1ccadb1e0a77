// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The module files of an installed kernel release, by module name, from
/// its `modules.dep` (`kernel/fs/xfs/xfs.ko.xz: deps…`). Names use `_`
/// for `-`, as the kernel does.
public struct InstalledModules: Sendable {
    public let directory: String
    public let paths: [String: String]

    public init(_ kernel: KernelRelease) throws(KernelError) {
        guard let directory = kernel.modulesDirectory else {
            throw KernelError(
                .missingPiece, "\(kernel.release) has no /lib/modules folder; its modules are not installed")
        }
        let depPath = Path.join(directory, "modules.dep")
        guard let text = FileSystem.readTextIfPresent(depPath) else {
            throw KernelError(.missingPiece, "cannot read \(depPath); run depmod \(kernel.release)")
        }
        var paths: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let relative = String(line[..<colon])
            var name = Path.base(of: relative)
            for ext in [".ko.xz", ".ko.zst", ".ko.gz", ".ko"] where name.hasSuffix(ext) {
                name = String(name.dropLast(ext.count))
                break
            }
            paths[name.replacingDashes()] = Path.join(directory, relative)
        }
        self.directory = directory
        self.paths = paths
    }

    public func path(of module: String) -> String? { paths[module.replacingDashes()] }
}
