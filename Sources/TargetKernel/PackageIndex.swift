// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// One binary package of a Debian `Packages` index: the fields Suture uses.
public struct PackageStanza: Sendable, Equatable {
    public var name: String
    public var version: String
    public var filename: String?
    public var size: Int?
    public var sha256: String?
    /// The raw `Depends:` field.
    public var depends: String
    /// The first line of `Description:`.
    public var summary: String

    public init(
        name: String, version: String, filename: String? = nil, size: Int? = nil, sha256: String? = nil,
        depends: String = "", summary: String = ""
    ) {
        self.name = name
        self.version = version
        self.filename = filename
        self.size = size
        self.sha256 = sha256
        self.depends = depends
        self.summary = summary
    }

    /// The package names in `Depends:`, every alternative included,
    /// without version constraints or architecture qualifiers.
    public var dependencyNames: [String] {
        depends.split(whereSeparator: { $0 == "," || $0 == "|" }).compactMap { item in
            let word = String(item).trimmingWhitespace().prefix { $0 != " " && $0 != "(" && $0 != ":" }
            return word.isEmpty ? nil : String(word)
        }
    }
}

/// A parsed `Packages` index (or any deb822 file of package stanzas).
public struct PackageIndex: Sendable {
    public let packages: [PackageStanza]

    public init(packages: [PackageStanza]) {
        self.packages = packages
    }

    /// Parses deb822 text. Stanzas without `Package` or `Version` are
    /// skipped; continuation lines (starting with a space) are ignored.
    public init(text: String) {
        var result: [PackageStanza] = []
        var fields: [String: String] = [:]
        func flush() {
            if let name = fields["Package"], let version = fields["Version"] {
                result.append(
                    PackageStanza(
                        name: name, version: version, filename: fields["Filename"],
                        size: fields["Size"].flatMap { Int($0) },
                        sha256: fields["SHA256"], depends: fields["Depends"] ?? "", summary: fields["Description"] ?? ""
                    ))
            }
            fields = [:]
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                flush()
                continue
            }
            if line.first == " " || line.first == "\t" { continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            let value = String(line[line.index(after: colon)...]).trimmingWhitespace()
            fields[key] = value
        }
        flush()
        packages = result
    }

    /// Every stanza of package `name`, newest version first.
    public func versions(of name: String) -> [PackageStanza] {
        packages.filter { $0.name == name }.sorted { DebianVersion($0.version) > DebianVersion($1.version) }
    }

    /// The stanza of `name` at exactly `version`.
    public func package(_ name: String, version: String) -> PackageStanza? {
        packages.first { $0.name == name && DebianVersion($0.version) == DebianVersion(version) }
    }
}

/// The packages that make up one kernel in one suite: what `suture kernel
/// fetch` downloads.
public struct KernelSelection: Sendable, Equatable {
    public let suite: String
    /// The release, as `uname -r` prints it: `6.12.118+deb12-amd64`.
    public let release: String
    /// The Debian version of every package: `6.12.118-1~deb12u1`.
    public let version: String
    /// The image package (signed preferred over `-unsigned`).
    public let image: PackageStanza
    /// `linux-headers-RELEASE` and the common headers and kbuild packages it needs.
    public let headers: [PackageStanza]
    /// `linux-source-SERIES` of the same version, unless left out.
    public let source: PackageStanza?
    /// Where `linux-image-RELEASE` is only a metapackage (sid from 7.x):
    /// `linux-binary-`, `linux-modules-` and `linux-base-RELEASE`, which
    /// hold the files, under `/usr/lib/modules/RELEASE/`.
    public var parts: [PackageStanza] = []

    public var all: [PackageStanza] { [image] + parts + headers + (source.map { [$0] } ?? []) }
    public var downloadSize: Int { all.reduce(0) { $0 + ($1.size ?? 0) } }
}

/// Choosing a kernel's packages from suites' indexes.
public enum KernelSelector {
    /// Whether `spec` names a release (`6.12.118+deb12-amd64`) rather than
    /// a package version (`6.12.118-1~deb12u1`): releases end in a flavour
    /// such as `amd64`, package versions end in a Debian revision.
    public static func looksLikeRelease(_ spec: String) -> Bool {
        guard let last = spec.split(separator: "-").last else { return false }
        return last.first?.isLetter == true
    }

    /// The release an image package installs, or nil for debug, meta and
    /// non-image packages.
    static func release(ofImage package: PackageStanza) -> String? {
        let prefix = "linux-image-"
        guard package.name.hasPrefix(prefix), !package.name.hasSuffix("-dbg"),
            !package.summary.contains("meta-package")
        else { return nil }
        var release = String(package.name.dropFirst(prefix.count))
        if release.hasSuffix("-unsigned") { release.removeLast("-unsigned".count) }
        // A release starts with a version with at least two dots or an ABI: `6.1.0-57-amd64`.
        guard release.first?.isNumber == true, release.split(separator: ".").count >= 3 else { return nil }
        return release
    }

    /// The image packages matching `spec` in one index: by release, or by
    /// package version (then the plain flavour, the shortest release, is
    /// preferred over `cloud-amd64` or `rt-amd64`). Signed before unsigned,
    /// newest first.
    static func images(_ spec: String, in index: PackageIndex) -> [PackageStanza] {
        let byRelease = looksLikeRelease(spec)
        let wanted = DebianVersion(spec)
        let matching = index.packages.filter { package in
            guard let release = release(ofImage: package) else { return false }
            return byRelease ? release == spec : DebianVersion(package.version) == wanted
        }
        return matching.sorted { a, b in
            let ra = release(ofImage: a) ?? ""
            let rb = release(ofImage: b) ?? ""
            if ra.count != rb.count { return ra.count < rb.count }
            if ra != rb { return ra < rb }
            let va = DebianVersion(a.version)
            let vb = DebianVersion(b.version)
            if va != vb { return va > vb }
            return !a.name.hasSuffix("-unsigned") && b.name.hasSuffix("-unsigned")
        }
    }

    /// Selects the kernel `spec` (a release or a package version) from the
    /// first suite whose index carries its image, with its headers, their
    /// common headers and kbuild packages, and (unless `withSource` is
    /// false) `linux-source-SERIES`, all of the image's version.
    public static func select(
        _ spec: String, suites: [(suite: String, index: PackageIndex)], withSource: Bool
    ) throws(KernelError) -> KernelSelection {
        for (suite, index) in suites {
            guard let image = images(spec, in: index).first, let release = release(ofImage: image) else { continue }
            let version = image.version
            func need(_ name: String) throws(KernelError) -> PackageStanza {
                guard let package = index.package(name, version: version) else {
                    throw KernelError(
                        .missingPiece,
                        "\(suite) carries \(image.name) \(version) but not \(name) \(version); the kernel cannot be prepared without it"
                    )
                }
                return package
            }
            let headers = try need("linux-headers-\(release)")
            var pieces = [headers]
            for name in headers.dependencyNames
            where (name.hasPrefix("linux-headers-") || name.hasPrefix("linux-kbuild-"))
                && !pieces.contains(where: { $0.name == name })
            {
                pieces.append(try need(name))
            }
            var parts: [PackageStanza] = []
            for name in image.dependencyNames
            where ["linux-binary-", "linux-modules-", "linux-base-"].contains(where: { name == $0 + release }) {
                parts.append(try need(name))
            }
            pieces.removeAll { piece in parts.contains { $0.name == piece.name } }
            let source = withSource ? try need("linux-source-\(KernelRelease.series(of: release))") : nil
            return KernelSelection(
                suite: suite, release: release, version: version, image: image,
                headers: pieces, source: source, parts: parts)
        }
        let names = suites.map(\.suite).joined(separator: ", ")
        let what =
            looksLikeRelease(spec)
            ? "kernel release \(spec) (package linux-image-\(spec))"
            : "a kernel image of package version \(spec)"
        throw KernelError(.unknownKernel, "no suite carries \(what); searched \(names.isEmpty ? "no suites" : names)")
    }
}
