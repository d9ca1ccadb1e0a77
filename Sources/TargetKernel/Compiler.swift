// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The kernel's compiler compared with the host's.
///
/// Code is only byte-identical to the shipped kernel when the same
/// compiler version builds it. The kernel records its compiler as
/// `gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0`; the host's is the first line
/// of `gcc-12 --version`. The program name (`gcc-12`, `gcc`) may differ;
/// everything after it must not.
public struct CompilerCheck: Sendable, Equatable {
    /// What built the kernel, or nil when neither headers nor config say.
    public let kernel: String?
    /// The program Suture passes to kbuild as `CC`, e.g. `gcc-12`.
    public let program: String
    /// The first line of `program --version`, or nil if it cannot run.
    public let host: String?

    public init(kernel: String?, program: String, host: String?) {
        self.kernel = kernel
        self.program = program
        self.host = host
    }

    /// Looks for the kernel's own compiler program on the host, else `gcc`.
    public static func check(kernelCompiler: String?) -> CompilerCheck {
        var candidates: [String] = []
        if let kernelCompiler, let first = kernelCompiler.split(separator: " ").first,
            first.hasPrefix("gcc") || first.hasPrefix("clang")
        {
            candidates.append(String(first))
        }
        candidates.append("gcc")
        for program in candidates where Command.which(program) != nil {
            let host = (try? Command.output([program, "--version"]))
                .flatMap { $0.split(separator: "\n").first.map { String($0).trimmingWhitespace() } }
            return CompilerCheck(kernel: kernelCompiler, program: program, host: host)
        }
        return CompilerCheck(kernel: kernelCompiler, program: candidates[0], host: nil)
    }

    /// The version text without the program name:
    /// `(Debian 12.2.0-14+deb12u1) 12.2.0`.
    static func versionPart(_ text: String) -> String {
        guard let space = text.firstIndex(of: " ") else { return text }
        return String(text[text.index(after: space)...]).trimmingWhitespace()
    }

    public var matches: Bool {
        guard let kernel, let host else { return false }
        return CompilerCheck.versionPart(kernel) == CompilerCheck.versionPart(host)
    }

    /// Why the compilers do not match, naming both.
    public var mismatchMessage: String {
        let hostText = host ?? "no \(program) on this machine"
        guard let kernel else {
            return
                "cannot tell which compiler built the kernel (no compile.h in the headers and no CONFIG_CC_VERSION_TEXT); host has \(hostText)"
        }
        return
            "the kernel was built with \"\(kernel)\" but this machine has \"\(hostText)\"; objects would not match the running code"
    }

    public var json: JSON {
        .object([
            ("kernel", .optional(kernel)),
            ("host", .optional(host)),
            ("program", .string(program)),
            ("matches", .bool(matches)),
        ])
    }
}
