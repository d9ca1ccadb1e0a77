// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The installed packages and their versions, read from dpkg's status file
/// (`/var/lib/dpkg/status`) rather than by running dpkg-query once per
/// package.
public struct DpkgStatus: Sendable {
    /// Installed package name → version.
    public let installed: [String: String]

    public init(path: String) {
        var result: [String: String] = [:]
        guard let text = FileSystem.readTextIfPresent(path) else {
            installed = [:]
            return
        }
        var name: String?
        var version: String?
        var isInstalled = false
        func flush() {
            if let name, let version, isInstalled { result[name] = version }
            name = nil
            version = nil
            isInstalled = false
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                flush()
                continue
            }
            if line.hasPrefix("Package: ") {
                name = String(line.dropFirst(9))
            } else if line.hasPrefix("Version: ") {
                version = String(line.dropFirst(9))
            } else if line.hasPrefix("Status: ") {
                isInstalled = line.hasSuffix(" installed")
            }
        }
        flush()
        installed = result
    }

    public init(installed: [String: String]) {
        self.installed = installed
    }

    public func version(of package: String) -> String? { installed[package] }
}
