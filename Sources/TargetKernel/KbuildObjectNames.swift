// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Which kbuild Makefile names a `.c` file's object. Usually the file's
/// own folder (`fs/proc/Makefile`: `proc-y += meminfo.o`); a composite
/// module may also list objects of its subfolders from above
/// (`fs/smb/server/Makefile`: `ksmbd-y += mgmt/tree_connect.o`,
/// `fs/xfs/Makefile`: `$(addprefix libxfs/, xfs_ag.o …)`), which kbuild
/// builds although the subfolder has no Makefile of its own.
public enum KbuildObjectNames {
    /// How many folders above the file's own are searched.
    static let levels = 3

    /// `dir/name.o` when a Makefile or Kbuild file of the file's folder,
    /// or of one of the folders above it, names the object (relative to
    /// that folder).
    public static func object(
        compiling cFile: String, root: String,
        containsWord: ([UInt8], [UInt8]) -> Bool
    ) -> String? {
        let stem = String(Path.base(of: cFile).dropLast(2))
        let object = Path.directory(of: cFile) == "." ? "\(stem).o" : "\(Path.directory(of: cFile))/\(stem).o"
        var folder = Path.directory(of: cFile) == "." ? "" : Path.directory(of: cFile)
        var relative = "\(stem).o"
        for level in 0...levels {
            let word = Array(relative.utf8)
            for makefile in ["Kbuild", "Makefile"] {
                let path = folder.isEmpty ? Path.join(root, makefile) : Path.join(root, folder, makefile)
                guard let bytes = try? FileSystem.read(path) else { continue }
                // Above its own folder, only an entry with the subfolder's path counts.
                if containsWord(bytes, word) || (level > 0 && addprefixNames(bytes, relative)) { return object }
            }
            guard !folder.isEmpty else { break }
            relative = Path.base(of: folder) + "/" + relative
            let parent = Path.directory(of: folder)
            folder = parent == "." ? "" : parent
        }
        return nil
    }

    /// Whether `$(addprefix P/, … name.o …)` in the Makefile names
    /// `P/name.o`.
    static func addprefixNames(_ bytes: [UInt8], _ relative: String) -> Bool {
        guard let slash = relative.lastIndex(of: "/") else { return false }
        let prefix = String(relative[...slash])
        let name = String(relative[relative.index(after: slash)...])
        let text = String(decoding: bytes, as: UTF8.self).replacingOccurrencesOfContinuations()
        var rest = Substring(text)
        while let start = rest.firstRange(of: "$(addprefix ") {
            let inner = rest[start.upperBound...].prefix { $0 != ")" }
            if let comma = inner.firstIndex(of: ",") {
                let p = inner[..<comma].trimmingCharacters()
                let words = inner[inner.index(after: comma)...].split(whereSeparator: {
                    $0 == " " || $0 == "\t" || $0 == "\n"
                })
                if p == prefix && words.contains(where: { $0 == name }) { return true }
            }
            rest = rest[start.upperBound...]
        }
        return false
    }
}

extension String {
    /// Backslash-newline continuations joined into one line.
    fileprivate func replacingOccurrencesOfContinuations() -> String {
        var out = ""
        var previous: Character?
        for c in self {
            if c == "\n" && previous == "\\" {
                out.removeLast()
                out.append(" ")
            } else {
                out.append(c)
            }
            previous = c
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
