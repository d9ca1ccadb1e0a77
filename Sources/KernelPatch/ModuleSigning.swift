// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform
import TargetKernel

/// A private key and its X.509 certificate for signing modules.
public struct SigningKey: Sendable, Equatable {
    public var key: String
    public var certificate: String

    public init(key: String, certificate: String) {
        self.key = key
        self.certificate = certificate
    }

    /// The machine owner key DKMS makes and Debian users enrol with
    /// `mokutil --import /var/lib/dkms/mok.pub`.
    public static let dkms = SigningKey(key: "/var/lib/dkms/mok.key", certificate: "/var/lib/dkms/mok.pub")
}

/// Signs a built module with the target kernel's own `sign-file` (from
/// its kbuild package, reached through the headers' `scripts` link) and
/// the hash algorithm of its config (`CONFIG_MODULE_SIG_HASH`), as kbuild's
/// `modules_sign` does.
public struct ModuleSigner: Sendable {
    public let key: SigningKey
    public let signFile: String
    public let hashAlgorithm: String

    /// Checks the key pair and finds the tools before a build starts.
    public init(_ key: SigningKey, kernel: KernelRelease) throws(BuildError) {
        for (path, what) in [(key.key, "private key"), (key.certificate, "certificate")]
        where access(path, R_OK) != 0 {
            let hint =
                key == .dkms
                ? "; make the DKMS key pair with `suture key create`, or name one with --sign-key KEY --sign-cert CERT"
                : ""
            throw BuildError(.usage, "cannot read the signing \(what) \(path)\(hint)")
        }
        guard let headers = kernel.headers else {
            throw BuildError(
                .usage,
                "cannot sign for \(kernel.release): its headers (and with them the kernel's sign-file) are not installed"
            )
        }
        let signFile = Path.join(headers, "scripts/sign-file")
        guard access(signFile, X_OK) == 0 else {
            throw BuildError(
                .usage, "cannot sign for \(kernel.release): \(signFile), the kernel's signing tool, is missing")
        }
        var hash = "sha256"
        if let config = kernel.config, let parsed = try? KernelConfig(path: config),
            case .value(let value) = parsed["MODULE_SIG_HASH"], !value.isEmpty
        {
            hash = value
        }
        self.key = key
        self.signFile = signFile
        self.hashAlgorithm = hash
    }

    /// Appends the signature to `module` in place.
    public func sign(_ module: String) throws(BuildError) {
        let argv = [signFile, hashAlgorithm, key.key, key.certificate, module]
        let result: CommandResult
        do {
            result = try Command.run(argv, timeout: 60)
        } catch {
            throw BuildError(.io, "cannot run \(signFile): \(error.description)", cause: error)
        }
        guard result.termination == .exited(0) else {
            throw BuildError(
                .io,
                "\(signFile) failed to sign \(Path.base(of: module)) with \(key.key): \(Command.tail(result.stderrText, lines: 5))"
            )
        }
    }
}

// MARK: - Making a key pair

extension SigningKey {
    /// The subject DKMS gives the key it makes.
    public static let dkmsCommonName = "DKMS module signing key"

    /// Makes the pair as DKMS does (`openssl req -x509`, RSA 2048, 100
    /// years), with the code-signing extended key usage the kernel's
    /// machine keyring expects, and the certificate in DER, the form
    /// `mokutil --import` reads. Never overwrites: returns false when both
    /// files exist, and throws when only one does.
    public func create(commonName: String = dkmsCommonName) throws(BuildError) -> Bool {
        let present: [String] = [key, certificate].filter { (path: String) in access(path, F_OK) == 0 }
        if present.count == 2 { return false }
        if present.count == 1 {
            throw BuildError(
                .refused,
                "\(present[0]) exists but its partner \(present[0] == key ? certificate : key) does not; not overwriting it. Move it away or name other files"
            )
        }
        guard !commonName.isEmpty, !commonName.contains(where: { "/\\=\n".contains($0) }) else {
            throw BuildError(.refused, "invalid common name \"\(commonName)\": no /, \\, = or newline")
        }
        guard let openssl = Command.which("openssl") else {
            throw BuildError(.usage, "openssl is not installed (apt-get install openssl)")
        }
        let directory = Path.directory(of: key)
        do {
            try FileSystem.makeDirectories(directory)
            try FileSystem.makeDirectories(Path.directory(of: certificate))
        } catch {
            throw BuildError(.io, "cannot create \(directory): \(error.description)", cause: error)
        }
        // Written under temporary names, then linked into place, which
        // fails rather than replace a file made meanwhile.
        let suffix = ".suture-\(getpid())"
        let (newKey, newCertificate) = (key + suffix, certificate + suffix)
        defer {
            unlink(newKey)
            unlink(newCertificate)
        }
        let argv = [
            openssl, "req", "-new", "-x509", "-nodes", "-utf8", "-sha256", "-days", "36500",
            "-subj", "/CN=\(commonName)/", "-newkey", "rsa:2048", "-addext", "extendedKeyUsage=codeSigning",
            "-keyout", newKey, "-outform", "DER", "-out", newCertificate,
        ]
        let result: CommandResult
        do {
            result = try Command.run(argv, timeout: 120)
        } catch {
            throw BuildError(.io, "cannot run openssl: \(error.description)", cause: error)
        }
        guard result.termination == .exited(0) else {
            throw BuildError(.io, "openssl failed to make a key pair: \(Command.tail(result.stderrText, lines: 5))")
        }
        chmod(newKey, 0o600)
        chmod(newCertificate, 0o644)
        guard link(newKey, key) == 0 else {
            throw BuildError(.io, "cannot create \(key): \(currentErrno().shortDescription)")
        }
        guard link(newCertificate, certificate) == 0 else {
            let error = currentErrno()
            unlink(key)
            throw BuildError(.io, "cannot create \(certificate): \(error.shortDescription)")
        }
        return true
    }
}
