// SPDX-License-Identifier: GPL-2.0-only
import ELF
import PatchCore
import Platform

/// The steps of `ProcessBuild.run`: the diff applied to a copy of the source,
/// each touched file recompiled, and the checks of the result.
extension ProcessBuild {
    /// Applies the diff with `patch` (`-p1`, else `-p0`); returns the touched
    /// files relative to the root.
    func applyDiff(_ diff: String, to root: String) throws(ProcessError) -> [String] {
        let text: String
        do { text = try FileSystem.readText(diff) } catch { throw error.process(.build, "read \(diff)") }
        var chosen: Int?
        for level in [1, 0] {
            let dry = try? Command.run([
                "patch", "--dry-run", "--batch", "--forward", "-p\(level)", "-d", root, "-i", diff,
            ])
            if dry?.termination.succeeded == true {
                chosen = level
                break
            }
        }
        guard let level = chosen else {
            let dry = try? Command.run(["patch", "--dry-run", "--batch", "--forward", "-p1", "-d", root, "-i", diff])
            throw ProcessError(
                .build,
                "\(diff) does not apply to the source: \(Command.tail(dry?.stdoutText ?? "") + Command.tail(dry?.stderrText ?? ""))"
            )
        }
        do {
            _ = try Command.output(["patch", "--batch", "--forward", "-p\(level)", "-d", root, "-i", diff])
        } catch {
            throw error.process(.build, "patch")
        }
        var touched: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("+++ ") {
            var path = String(line.dropFirst(4))
            if let tab = path.firstIndex(of: "\t") { path = String(path[..<tab]) }
            path = path.trimmingWhitespace()
            if path == "/dev/null" { continue }
            let components = path.split(separator: "/", omittingEmptySubsequences: false)
            guard components.count > level else { continue }
            let relative = components.dropFirst(level).joined(separator: "/").normalizedPath
            if !touched.contains(relative) { touched.append(relative) }
        }
        guard !touched.isEmpty else { throw ProcessError(.build, "\(diff) names no file it changes") }
        return touched
    }

    /// Recompiles one recorded object in the patched copy, with its recorded
    /// command line, into `output`. Paths into the source tree point into the
    /// copy instead, the object goes to `output` (never over a file of the
    /// original build), and dependency-file options are dropped.
    func recompile(_ record: CompileRecord, sourceRoot: String, patchedRoot: String, output: String)
        throws(ProcessError)
    {
        let directory = record.directory.normalizedPath.replacingPathPrefix(sourceRoot, with: patchedRoot)
        var arguments: [String] = []
        var skip = false
        for a in record.arguments {
            if skip {
                skip = false
                continue
            }
            if a == "-o" || a == "-MF" || a == "-MT" || a == "-MQ" {
                skip = true
                continue
            }
            if a.hasPrefix("-o") || a == "-MD" || a == "-MMD" || a == "-MP" || a.hasPrefix("-MF") || a.hasPrefix("-MT")
                || a.hasPrefix("-MQ")
            {
                continue
            }
            // Absolute paths into the tree, alone or inside an option (-I/src/include).
            arguments.append(a.replacingPathPrefix(sourceRoot, with: patchedRoot))
        }
        // Same file names in strings and debug info as the original build
        // (unless the build maps the tree's path itself, as dpkg-buildflags does).
        let mapped = record.arguments.contains { a in
            ["-ffile-prefix-map=", "-fmacro-prefix-map="].contains { a.hasPrefix($0 + sourceRoot + "=") }
        }
        if !mapped { arguments.append("-ffile-prefix-map=\(patchedRoot)=\(sourceRoot)") }
        arguments += ["-o", output]
        guard let src = record.source else {
            throw ProcessError(.build, "cannot tell which source \(record.arguments.joined(separator: " ")) compiles")
        }
        Progress.say("suture: recompiling \(src.dropFirst(sourceRoot.count + 1))")
        do {
            let result = try Command.run([record.compiler] + arguments, workingDirectory: directory)
            guard result.termination.succeeded else {
                throw ProcessError(
                    .build, "recompiling \(src) after the diff failed:\n\(Command.tail(result.stderrText))")
            }
        } catch let error as ProcessError {
            throw error
        } catch {
            throw ProcessError(.build, "recompile \(src): \(error)", cause: error as? any SutureError)
        }
    }

    /// The manifest entry of a replaced function: its original bytes, with
    /// the bytes the linker fills in (relocations, and the instruction bytes
    /// it may rewrite when relaxing GOT loads) masked.
    func expectedFunction(_ f: PatchedFunction, file: String, original: ObjectIndex, newSymbol: String)
        throws(ProcessError) -> PatchManifest.Function
    {
        guard let element = original.elements.first(where: { $0.name == f.originalName && $0.kind == .function }) else {
            throw ProcessError(.build, "\(file): \(f.originalName) is not a function of the original object")
        }
        let objectFile = original.file
        let section = objectFile.sections[element.section]
        let bytes = objectFile.data(section).slice(Int(element.start)..<Int(element.end)).array
        var masked: [Range<Int>] = []
        for rs in objectFile.relocationSections where rs.target == element.section {
            for r in rs.relocations where r.offset >= element.start && r.offset < element.end {
                let at = Int(r.offset - element.start)
                let size = objectFile.architecture.kind(r.type)?.size ?? 4
                // GOTPCRELX (41) may turn `mov foo@GOTPCREL(%rip)` into `lea`,
                // REX_GOTPCRELX (42) also touches the REX byte.
                let before = r.type == 42 ? 3 : r.type == 41 ? 2 : 0
                masked.append(max(0, at - before)..<min(bytes.count, at + max(size, 1)))
            }
        }
        return PatchManifest.Function(
            name: f.originalName, file: f.isLocal ? file : nil, isLocal: f.isLocal,
            symbol: newSymbol, size: bytes.count, expected: bytes, masked: masked)
    }

    /// Why the binary's copy of a function cannot be redirected, if it cannot.
    func check(_ f: PatchManifest.Function, in binary: ELFFile, symbols: SymbolTable) -> String? {
        let entry = f.isLocal ? symbols.local(f.name, file: f.file ?? "") : symbols.globals[f.name]
        guard let entry else {
            return
                "\(f.name): not in the symbol table of \(binary.path) (inlined everywhere, removed by the linker, or a stripped binary)"
        }
        guard let actual = binary.bytes(atAddress: entry.value, count: f.size) else {
            return "\(f.name): its address 0x\(hex(entry.value)) is outside the binary's loaded segments"
        }
        if let at = f.firstMismatch(actual) {
            return
                "\(f.name): the binary's code differs from the compiled object at byte \(at) (was the program built by this build command, without LTO?)"
        }
        let needed = UInt64(X86Code.landingPadLength(f.expected) + X86Code.entryJumpLength)
        if let next = symbols.next(after: entry.value), next < entry.value + needed {
            return "\(f.name): only \(next - entry.value) bytes until the next symbol; the entry jump needs \(needed)"
        }
        do {
            let into = try X86Code.branchesIntoEntry(f.expected)
            if let first = into.first {
                return
                    "\(f.name): the branch at byte \(first.from) lands on byte \(first.to), inside the \(X86Code.entryJumpLength) bytes the entry jump overwrites"
            }
        } catch {
            return "\(f.name): cannot decode its instructions (\(error.description))"
        }
        return nil
    }
}

extension String {
    /// Every occurrence of the folder `prefix` (followed by `/` or the end)
    /// replaced by `replacement`.
    func replacingPathPrefix(_ prefix: String, with replacement: String) -> String {
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: prefix) {
            let after = rest[range.upperBound...]
            out += rest[..<range.lowerBound]
            if after.isEmpty || after.first == "/" { out += replacement } else { out += prefix }
            rest = after
        }
        return out + rest
    }
}

extension ELFFile {
    /// The file bytes behind a link-time address range, if one loaded segment
    /// holds them.
    func bytes(atAddress address: UInt64, count: Int) -> [UInt8]? {
        for ph in programHeaders where ph.type == SegmentType.load {
            guard address >= ph.virtualAddress, address + UInt64(count) <= ph.virtualAddress + ph.fileSize else {
                continue
            }
            let offset = Int(ph.offset + (address - ph.virtualAddress))
            guard offset + count <= storage.count else { return nil }
            return Array(storage.bytes[offset..<offset + count])
        }
        return nil
    }
}
