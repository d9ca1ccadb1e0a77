// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Which recorded objects went into a binary, from the recorded links and
/// `ar` runs: the objects on its link line, and the members of the archives
/// it links (named as files or found through `-lNAME` and `-L`).
public enum LinkedObjects {
    /// The objects of `binary` (absolute), or nil when no recorded link
    /// wrote it.
    public static func of(_ binary: String, records: [CompileRecord]) -> Set<String>? {
        let target = canonical(binary)
        guard let link = records.last(where: { $0.kind == .link && $0.linkOutput.map(canonical) == target }) else {
            return nil
        }
        var members: [String: Set<String>] = [:]
        for r in records where r.kind == .archive {
            guard let (archive, objects) = r.archiveMembers else { continue }
            members[canonical(archive), default: []].formUnion(objects.map(canonical))
        }
        var objects = Set<String>()
        for input in link.linkInputs {
            let file = canonical(input)
            if let inArchive = members[file] {
                objects.formUnion(inArchive)
            } else {
                objects.insert(file)
            }
        }
        return objects
    }

    /// The path with symbolic links resolved where it exists.
    static func canonical(_ path: String) -> String {
        (try? FileSystem.realPath(path)) ?? path.normalizedPath
    }
}

extension CompileRecord {
    /// The file a link writes (absolute).
    public var linkOutput: String? {
        guard kind == .link else { return nil }
        for (i, a) in arguments.enumerated() where a == "-o" && i + 1 < arguments.count {
            return Path.join(directory, arguments[i + 1]).normalizedPath
        }
        return Path.join(directory, "a.out")
    }

    /// The files a link reads: objects and archives on its line, and the
    /// static archives `-lNAME` finds in its `-L` folders.
    var linkInputs: [String] {
        var inputs: [String] = []
        var folders: [String] = []
        var names: [String] = []
        var skip = false
        for (i, a) in arguments.enumerated() {
            if skip {
                skip = false
                continue
            }
            if a == "-L", i + 1 < arguments.count {
                folders.append(Path.join(directory, arguments[i + 1]))
            } else if a.hasPrefix("-L") {
                folders.append(Path.join(directory, String(a.dropFirst(2))))
            } else if a.hasPrefix("-l") && a.count > 2 {
                names.append(String(a.dropFirst(2)))
            }
            if a == "-o" || CompileRecord.optionsWithValue.contains(a)
                || CompilerWrapper.linkOptionsWithValue.contains(a)
            {
                skip = true
                continue
            }
            if !a.hasPrefix("-") && CompilerWrapper.isLinkInput(a) {
                inputs.append(Path.join(directory, a).normalizedPath)
            }
        }
        for name in names {
            let file = name.hasPrefix(":") ? String(name.dropFirst()) : "lib\(name).a"
            if let found = folders.map({ Path.join($0, file).normalizedPath }).first(where: FileSystem.exists) {
                inputs.append(found)
            }
        }
        return inputs
    }

    /// The archive an `ar` run adds to and the objects it adds.
    var archiveMembers: (archive: String, objects: [String])? {
        guard kind == .archive else { return nil }
        var plain: [String] = []
        var skip = false
        for a in arguments {
            if skip {
                skip = false
                continue
            }
            if a == "--plugin" || a == "--target" {
                skip = true
                continue
            }
            if !a.hasPrefix("--") { plain.append(a) }
        }
        guard let key = plain.first else { return nil }
        var rest = plain.dropFirst()
        // Positional modifiers name a member first (a, b, i), a count (N).
        if key.contains(where: { "abi".contains($0) }) { rest = rest.dropFirst() }
        if key.contains("N") { rest = rest.dropFirst() }
        guard let archive = rest.first else { return nil }
        return (
            Path.join(directory, archive).normalizedPath,
            rest.dropFirst().map { Path.join(directory, $0).normalizedPath }
        )
    }
}
