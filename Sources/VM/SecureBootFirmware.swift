// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// UEFI firmware with Secure Boot really on, for a guest that must behave
/// like a Secure Boot machine: the firmware verifies the distribution's
/// signed kernel image, the kernel locks itself down, and a machine owner
/// key (MOK) is trusted for modules.
///
/// The firmware is `ovmf`'s `OVMF_CODE_4M.secboot.fd`. Its variables are
/// written by `virt-fw-vars` (python3-virt-firmware): a fresh platform key
/// and KEK, the certificates of the kernel image's own Authenticode
/// signature in `db`, Secure Boot on, and the MOK as shim leaves it for
/// the kernel: `MokListRT` (an EFI signature list) and `MokListTrustedRT`
/// (so 6.1's `load_uefi_certs` puts it in the `.machine` keyring). The
/// kernel ignores `MokListRT` unless Secure Boot is on, which is why the
/// image must be verified for real. The prepared variables are cached per
/// kernel image and MOK; each boot gets a private copy in a memfd.
public struct SecureBootFirmware: Sendable {
    public static let code = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
    public static let templateVariables = "/usr/share/OVMF/OVMF_VARS_4M.fd"
    /// shim's vendor GUID, the owner of `MokListRT`.
    static let shimGUID = "605dab50-e046-4300-abb6-3dd810dd8b23"

    /// The cached variables file this boot starts from.
    public let variables: String

    /// Prepares (or finds in `cacheDirectory`) the variables for `kernel`
    /// with `mok` (a PEM or DER certificate) as machine owner key.
    public static func prepare(kernel: KernelRelease, mok: String?, cacheDirectory: String)
        throws(VMError) -> SecureBootFirmware
    {
        for file in [code, templateVariables] where access(file, R_OK) != 0 {
            throw VMError(.missingTool, "\(file) is missing (apt-get install ovmf)")
        }
        let tools = try ["virt-fw-vars", "osslsigncode", "openssl"].map { tool throws(VMError) in
            guard let path = Command.which(tool) else {
                let package = tool == "virt-fw-vars" ? "python3-virt-firmware, from bookworm-backports" : tool
                throw VMError(.missingTool, "\(tool) is not installed (apt-get install \(package))")
            }
            return path
        }
        let (virtFwVars, osslsigncode, openssl) = (tools[0], tools[1], tools[2])
        let image: [UInt8]
        let mokBytes: [UInt8]?
        do {
            image = try FileSystem.read(kernel.image)
            mokBytes = try mok.map { path throws(PlatformError) in try FileSystem.read(path) }
        } catch {
            throw VMError(.badInput, "read the kernel image or the MOK certificate", error)
        }
        let key = SHA256.hex(Array(SHA256.hex(image).utf8) + Array((mokBytes.map { SHA256.hex($0) } ?? "-").utf8))
        let folder = Path.join(cacheDirectory, "secureboot")
        let cached = Path.join(folder, "\(kernel.release)-\(key.prefix(16)).fd")
        if access(cached, R_OK) == 0 { return SecureBootFirmware(variables: cached) }

        let scratch: TemporaryDirectory
        do { scratch = try TemporaryDirectory(prefix: "suture-secureboot") } catch {
            throw VMError(.system, "create a scratch folder", error)
        }
        defer { scratch.remove() }
        func run(_ argv: [String]) throws(VMError) {
            let result: CommandResult
            do { result = try Command.run(argv, timeout: 120) } catch {
                throw VMError(.system, "run \(argv[0])", error)
            }
            guard result.termination == .exited(0) else {
                throw VMError(
                    .system,
                    "\(Path.base(of: argv[0])) failed: \(Command.tail(result.stderrText + result.stdoutText, lines: 5))"
                )
            }
        }
        func file(_ name: String) -> String { Path.join(scratch.path, name) }

        // The image's own signature names the certificates that verify it.
        try run([osslsigncode, "extract-signature", "-in", kernel.image, "-out", file("signature.der")])
        try run([
            openssl, "pkcs7", "-inform", "DER", "-in", file("signature.der"), "-print_certs", "-out", file("all.pem"),
        ])
        let certificates = pemBlocks((try? FileSystem.readText(file("all.pem"))) ?? "")
        guard !certificates.isEmpty else {
            throw VMError(.badInput, "\(kernel.image) carries no Authenticode certificate: it is not a signed kernel")
        }
        var argv = [
            virtFwVars, "-i", templateVariables, "-o", file("vars.fd"),
            "--enroll-generate", "Suture Secure Boot guest", "--no-microsoft", "--sb",
        ]
        for (index, certificate) in certificates.enumerated() {
            let path = file("db\(index).pem")
            do { try FileSystem.write(path, certificate) } catch { throw VMError(.system, "write \(path)", error) }
            argv += ["--add-db", shimGUID, path]
        }
        if let mok {
            let isPEM = mokBytes?.starts(with: Array("-----BEGIN".utf8)) ?? false
            try run([openssl, "x509", "-inform", isPEM ? "PEM" : "DER", "-in", mok, "-out", file("mok.pem")])
            // virt-fw-vars builds the signature list under the name MokList;
            // the kernel reads the runtime copy shim makes of it.
            try run([
                virtFwVars, "-i", templateVariables, "-o", file("mok.fd"), "--add-mok", shimGUID, file("mok.pem"),
                "--output-json", file("mok.json"),
            ])
            let list: String
            do {
                let json = try JSON.parse(try FileSystem.read(file("mok.json")))
                guard
                    let entry = json["variables"]?.arrayValue?.first(where: { $0["name"]?.stringValue == "MokList" }),
                    let data = entry["data"]?.stringValue
                else { throw VMError(.system, "virt-fw-vars wrote no MokList for \(mok)") }
                list = data
            } catch let error as VMError {
                throw error
            } catch {
                throw VMError(.system, "read virt-fw-vars' MokList: \(error)")
            }
            let variables: JSON = .object([
                ("version", .integer(2)),
                (
                    "variables",
                    .array([
                        runtimeVariable("MokListRT", data: list),
                        runtimeVariable("MokListTrustedRT", data: "01"),
                    ])
                ),
            ])
            do { try FileSystem.write(file("moklist.json"), variables.serialized()) } catch {
                throw VMError(.system, "write the MOK variables", error)
            }
            argv += ["--set-json", file("moklist.json")]
        }
        try run(argv)
        do {
            try FileSystem.makeDirectories(folder)
            try AtomicFile.write(cached, try FileSystem.read(file("vars.fd")), mode: 0o644)
        } catch {
            throw VMError(.system, "cache the firmware variables in \(folder)", error)
        }
        return SecureBootFirmware(variables: cached)
    }

    /// Non-volatile, boot-service and runtime access (attributes 7), under shim's GUID.
    static func runtimeVariable(_ name: String, data: String) -> JSON {
        .object([("name", .string(name)), ("guid", .string(shimGUID)), ("attr", .integer(7)), ("data", .string(data))])
    }

    /// The `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----` blocks of `text`.
    static func pemBlocks(_ text: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring]? = nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("-----BEGIN CERTIFICATE-----") { current = [] }
            current?.append(line)
            if line.hasPrefix("-----END CERTIFICATE-----"), let lines = current {
                blocks.append(lines.joined(separator: "\n") + "\n")
                current = nil
            }
        }
        return blocks
    }

    /// QEMU's arguments: a q35 machine with SMM (the variables are only
    /// protected, and Secure Boot only enforced, with it), the firmware
    /// read-only, and the variables from `variablesFD`, a private copy.
    static func qemuArguments(variablesFD: Int32) -> [String] {
        [
            "-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=\(code)",
            "-drive", "if=pflash,format=raw,unit=1,file=/proc/self/fd/\(variablesFD)",
        ]
    }
}
