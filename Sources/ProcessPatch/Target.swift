// SPDX-License-Identifier: GPL-2.0-only
import ELF
import Platform

/// A process opened for patching or inspection: its checks passed, its
/// memory and maps at hand, its ELF objects and patch areas found.
final class Target {
    let process: TargetProcess
    let memory: ProcessMemory
    var map: MemoryMap
    let objects: [LoadedObject]
    var scan: AreaScan
    private var symbolCache: [String: SymbolTable] = [:]

    var pid: Int32 { process.pid }

    init(pid: Int32, writable: Bool) throws(ProcessError) {
        // First of all: every later check must be of this very process.
        ProcessIdentity.remember(pid)
        process = try TargetProcess(pid: pid)
        try process.checkOwner()
        memory = try ProcessMemory(pid: pid, writable: writable)
        map = try MemoryMap.read(pid: pid)
        objects = LoadedObject.all(in: map, memory: memory)
        scan = try AreaScan.scan(map, memory: memory)
    }

    func rescan() throws(ProcessError) {
        map = try MemoryMap.read(pid: pid)
        scan = try AreaScan.scan(map, memory: memory)
    }

    /// The object with this build-id.
    func object(buildID: [UInt8], patch: String) throws(ProcessError) -> LoadedObject {
        if let o = objects.first(where: { $0.buildID == buildID }) { return o }
        let listed = objects.filter { !$0.isVDSO }.prefix(8).map {
            "\(Path.base(of: $0.path)) \($0.buildID.map(hexString) ?? "(no build-id)")"
        }
        throw ProcessError(
            .buildIDMismatch,
            "\(patch) is for build-id \(hexString(buildID)), which no object mapped in process \(pid) (\(process.name)) has: \(listed.joined(separator: ", "))"
        )
    }

    /// The symbol table of a loaded object (read once). A stripped object
    /// (a distribution's library) takes its static and hidden symbols from
    /// its debug file, found by build-id.
    func symbols(_ object: LoadedObject) throws(ProcessError) -> SymbolTable {
        if let cached = symbolCache[object.path] { return cached }
        let file = try object.open(pid: pid)
        var table = SymbolTable(file)
        if !table.hasSymbolTable, let debug = object.debugFile() { table = SymbolTable(file, debug: debug) }
        symbolCache[object.path] = table
        return table
    }

    /// Resolves a patch reference: statics and the program's own symbols in
    /// the target object, other names there first, then in the libraries in
    /// address order (the executable comes first, like the dynamic linker's
    /// global scope, so copy-relocated data resolves to the program's copy).
    func resolver(for object: LoadedObject) -> (PatchManifest.Reference) throws(ProcessError) -> Linker.Resolution? {
        { reference throws(ProcessError) -> Linker.Resolution? in
            let table = try self.symbols(object)
            switch reference.origin {
            case .local:
                return table.local(reference.name, file: reference.file ?? "").map {
                    Linker.Resolution(address: object.bias &+ $0.value)
                }
            case .global:
                // A shared library reaches its own exported symbols through
                // its GOT, as the dynamic linker bound them: the program's
                // copy of a variable (copy relocation), an interposed function.
                if let slot = table.definedSlots[reference.name] {
                    let address = object.bias &+ slot
                    return Linker.Resolution(address: try self.memory.readWord(address), slot: address)
                }
                return table.defined(reference.name).map { Linker.Resolution(address: object.bias &+ $0.value) }
            case .external:
                // What the program imports: through its own GOT slot.
                if let slot = table.imports[reference.name] {
                    let address = object.bias &+ slot
                    return Linker.Resolution(address: try self.memory.readWord(address), slot: address)
                }
                if let e = table.defined(reference.name) { return Linker.Resolution(address: object.bias &+ e.value) }
                let exe = (try? FileSystem.readLink("/proc/\(self.pid)/exe")) ?? ""
                let executableFirst = self.objects.filter { !$0.isVDSO && $0.path != object.path }
                    .sorted {
                        ($0.path == exe ? 0 : 1, $0.headerMapping.start) < (
                            $1.path == exe ? 0 : 1, $1.headerMapping.start
                        )
                    }
                for other in executableFirst {
                    guard let t = try? self.symbols(other), let e = t.dynamic[reference.name], e.type != SymbolType.tls
                    else { continue }
                    if e.type == SymbolType.gnuIfunc {
                        throw ProcessError(
                            .unresolved,
                            "the patch calls \(reference.name), an ifunc of \(Path.base(of: other.path)) that the program does not import; its implementation is chosen at load time and cannot be called directly"
                        )
                    }
                    return Linker.Resolution(address: other.bias &+ e.value)
                }
                return nil
            }
        }
    }

    /// `function+0xoff` for a run-time address, or hex.
    func symbolize(_ address: UInt64) -> String {
        for o in objects where o.span.contains(address) {
            if let t = try? symbols(o), let s = t.symbolize(address &- o.bias) { return s }
        }
        for a in scan.areas where a.range.contains(address) {
            for f in a.functions where (f.newAddress..<f.newAddress + max(f.newSize, 1)).contains(address) {
                return "\(f.name) (patch #\(a.sequence))"
            }
            return "patch #\(a.sequence) area"
        }
        return "0x\(hex(address))"
    }
}
