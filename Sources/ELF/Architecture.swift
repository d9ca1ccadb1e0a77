// SPDX-License-Identifier: GPL-2.0-only

/// What one relocation type does, as far as patching needs to know.
public struct RelocationKind: Sendable {
    /// The name binutils prints, e.g. `R_X86_64_PLT32`.
    public let name: String
    /// Bytes the relocation writes at its offset (0 for none/unknown).
    public let size: Int
    /// Whether the value is relative to the place (S + A - P).
    public let pcRelative: Bool
}

/// Everything architecture-specific lives behind this one table, so that
/// aarch64 can follow by adding a table, not by editing call sites.
public struct Architecture: Sendable {
    public let machine: UInt16
    public let name: String
    private let kinds: [UInt32: RelocationKind]
    private let prefix: String
    /// The relocation type a 64-bit absolute address uses.
    public let absolute64: UInt32
    /// The relocation type of a 32-bit PC-relative reference (`S + A - P`).
    public let pcRelative32: UInt32
    /// The relocation type of a call to a function (`PLT32` on x86-64).
    public let call32: UInt32

    public func kind(_ type: UInt32) -> RelocationKind? { kinds[type] }

    /// The binutils spelling of a relocation type, or readelf's
    /// `unrecognized: N` for types the table does not know.
    public func relocationName(_ type: UInt32) -> String {
        kinds[type]?.name ?? "unrecognized: \(String(type, radix: 16))"
    }

    /// The table for an `e_machine`, or a generic one that names nothing.
    public static func forMachine(_ machine: UInt16) -> Architecture {
        switch machine {
        case Machine.x86_64: return .x86_64
        default:
            return Architecture(
                machine: machine, name: "machine \(machine)", kinds: [:], prefix: "",
                absolute64: 0, pcRelative32: 0, call32: 0)
        }
    }

    public static let x86_64: Architecture = {
        // (type, name suffix, size, pc-relative), in the order of the psABI.
        let table: [(UInt32, String, Int, Bool)] = [
            (0, "NONE", 0, false), (1, "64", 8, false), (2, "PC32", 4, true), (3, "GOT32", 4, false),
            (4, "PLT32", 4, true), (5, "COPY", 0, false), (6, "GLOB_DAT", 8, false),
            (7, "JUMP_SLOT", 8, false), (8, "RELATIVE", 8, false), (9, "GOTPCREL", 4, true),
            (10, "32", 4, false), (11, "32S", 4, false), (12, "16", 2, false), (13, "PC16", 2, true),
            (14, "8", 1, false), (15, "PC8", 1, true), (16, "DTPMOD64", 8, false),
            (17, "DTPOFF64", 8, false), (18, "TPOFF64", 8, false), (19, "TLSGD", 4, true),
            (20, "TLSLD", 4, true), (21, "DTPOFF32", 4, false), (22, "GOTTPOFF", 4, true),
            (23, "TPOFF32", 4, false), (24, "PC64", 8, true), (25, "GOTOFF64", 8, false),
            (26, "GOTPC32", 4, true), (27, "GOT64", 8, false), (28, "GOTPCREL64", 8, true),
            (29, "GOTPC64", 8, true), (30, "GOTPLT64", 8, false), (31, "PLTOFF64", 8, false),
            (32, "SIZE32", 4, false), (33, "SIZE64", 8, false), (34, "GOTPC32_TLSDESC", 4, true),
            (35, "TLSDESC_CALL", 0, false), (36, "TLSDESC", 16, false), (37, "IRELATIVE", 8, false),
            (38, "RELATIVE64", 8, false), (41, "GOTPCRELX", 4, true), (42, "REX_GOTPCRELX", 4, true),
        ]
        var kinds: [UInt32: RelocationKind] = [:]
        for (type, suffix, size, pc) in table {
            kinds[type] = RelocationKind(name: "R_X86_64_" + suffix, size: size, pcRelative: pc)
        }
        return Architecture(
            machine: Machine.x86_64, name: "x86_64", kinds: kinds, prefix: "R_X86_64_",
            absolute64: 1, pcRelative32: 2, call32: 4)
    }()
}
