// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// `suture process build --deb DIR`: a Debian source package built the way
/// Debian builds it, `dpkg-buildpackage -b -uc -us` with its own
/// `debian/rules` (and so `dpkg-buildflags`: PIE, `-fstack-protector-strong`,
/// `_FORTIFY_SOURCE`, full RELRO, `-fcf-protection`), through the wrapper.
/// The program to patch is the one a package installs: found in the
/// packages' staging trees (`debian/PACKAGE/…`), matched by build-id to the
/// binary the recorded link wrote.
enum DebianBuild {
    static let command = "dpkg-buildpackage -b -uc -us"

    /// `nostrip`: the installed program keeps its symbol table, which `apply`
    /// reads; its code and build-id are those of a stripped build.
    static func environment() -> [String: String?] {
        let options = FileSystem.environment("DEB_BUILD_OPTIONS") ?? ""
        let words = options.split(separator: " ").map(String.init)
        return ["DEB_BUILD_OPTIONS": (words.contains("nostrip") ? words : words + ["nostrip"]).joined(separator: " ")]
    }

    /// The build's copy of the program to patch, the path the package
    /// installs it at, and the packages built. `name` is the installed path
    /// (`/usr/sbin/hellod`), a file name, or empty for the one program the
    /// packages install.
    static func locate(_ name: String, package dir: String, records: [CompileRecord]) throws(ProcessError) -> (
        binary: String, installed: String, packages: [String]
    ) {
        let debian = Path.join(dir, "debian")
        let control = FileSystem.readTextIfPresent(Path.join(debian, "control")) ?? ""
        let packages = control.split(separator: "\n").filter { $0.hasPrefix("Package:") }.map {
            String($0.dropFirst(8)).trimmingWhitespace()
        }
        guard !packages.isEmpty else { throw ProcessError(.build, "\(debian)/control names no binary package") }
        var candidates: [(staged: String, installed: String)] = []
        for package in packages {
            let root = Path.join(debian, package)
            for file in programs(in: root) {
                let installed = String(file.dropFirst(root.count))
                let matches =
                    name.isEmpty || installed == name
                    || (!name.contains("/") && Path.base(of: installed) == name)
                if matches { candidates.append((file, installed)) }
            }
        }
        guard candidates.count == 1, let chosen = candidates.first else {
            let what = name.isEmpty ? "program" : "program named \(name)"
            let listed = candidates.map(\.installed).joined(separator: ", ")
            throw ProcessError(
                .build,
                candidates.isEmpty
                    ? "the packages of \(dir) install no \(what) (\(packages.joined(separator: ", ")))"
                    : "the packages of \(dir) install more than one \(what) (\(listed)); name one with --binary")
        }
        let id = try? ELFFile.open(chosen.staged).buildID()
        // The build tree's copy, which the recorded link wrote.
        var binary = chosen.staged
        for r in records.reversed() where r.kind == .link {
            guard let out = r.linkOutput, FileSystem.exists(out), id != nil,
                (try? ELFFile.open(out).buildID()) == id
            else { continue }
            binary = out
            break
        }
        let parent = Path.directory(of: dir)
        let files = FileSystem.readTextIfPresent(Path.join(debian, "files")) ?? ""
        let debs = files.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasSuffix(".deb") }.map { Path.join(parent, $0) }
        return (binary, chosen.installed, debs)
    }

    /// ELF executables and shared objects in a staging tree, except
    /// detached debug files.
    static func programs(in root: String) -> [String] {
        var found: [String] = []
        var folders = [root]
        while let folder = folders.popLast() {
            for entry in ((try? FileSystem.list(folder)) ?? []).sorted() {
                let path = Path.join(folder, entry)
                if path == Path.join(root, "usr/lib/debug") || path == Path.join(root, "DEBIAN") { continue }
                switch FileSystem.kind(path) {
                case .directory: folders.append(path)
                case .file:
                    if let bytes = try? FileSystem.read(path, stop: { $0.count >= 4 }),
                        bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46])
                    {
                        found.append(path)
                    }
                default: break
                }
            }
        }
        return found
    }
}
