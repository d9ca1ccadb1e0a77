// SPDX-License-Identifier: GPL-2.0-only
import Platform
import SystemPackage

/// Whether the running kernel insists on signed modules, and which keys it
/// trusts, read before `finit_module` so that a refusal says what to do.
///
/// The kernel decides in `module_sig_check` (kernel/module/signing.c): with
/// `module.sig_enforce` or under lockdown (Debian turns both on when it
/// boots with UEFI Secure Boot), a module that is unsigned, or signed by a
/// key in none of its keyrings, is refused with `EKEYREJECTED`; otherwise it
/// loads and taints the kernel with `E`.
public struct SignaturePolicy: Sendable, Equatable {
    /// The lockdown mode in force (`none`, `integrity`, `confidentiality`),
    /// nil when the kernel has no lockdown LSM or securityfs is not mounted.
    public var lockdown: String?
    /// `/sys/module/module/parameters/sig_enforce`; nil when the kernel does
    /// not check module signatures at all.
    public var sigEnforce: Bool?
    /// Descriptions of the asymmetric keys `/proc/keys` shows, e.g.
    /// `Debian Secure Boot CA: 6cce…`; nil when it cannot be read.
    public var keys: [String]?

    public init(lockdown: String?, sigEnforce: Bool?, keys: [String]?) {
        self.lockdown = lockdown
        self.sigEnforce = sigEnforce
        self.keys = keys
    }

    /// The running kernel's policy, from `tree`.
    public static func read(_ tree: KernelTree) -> SignaturePolicy {
        let lockdown = KernelFiles.read(tree.lockdown).flatMap(Self.selectedMode)
        let enforce = KernelFiles.read(tree.sigEnforce).map { $0 == "Y" || $0 == "1" }
        let keys = KernelFiles.read(tree.keys).map(Self.asymmetricKeys)
        return SignaturePolicy(lockdown: lockdown, sigEnforce: enforce, keys: keys)
    }

    /// `integrity` from `none [integrity] confidentiality`.
    static func selectedMode(_ text: String) -> String? {
        guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        return String(text[text.index(after: open)..<close])
    }

    /// The descriptions of `asymmetri` keys in `/proc/keys` lines: ID,
    /// flags, usage, expiry, permissions, uid, gid, type, description.
    static func asymmetricKeys(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", maxSplits: 8, omittingEmptySubsequences: true)
            guard fields.count == 9, fields[7].hasPrefix("asymmetri") else { return nil }
            return String(fields[8]).trimmingWhitespace()
        }
    }

    /// Whether the kernel refuses modules it cannot verify, and why.
    public var enforcement: String? {
        if let lockdown, lockdown != "none" { return "the kernel is locked down (lockdown: \(lockdown))" }
        if sigEnforce == true { return "module.sig_enforce is set" }
        return nil
    }

    /// Whether a key whose certificate names `signer` is in a keyring;
    /// nil when the keyrings cannot be read.
    public func trusts(_ signer: String) -> Bool? {
        keys.map { $0.contains { $0.hasPrefix(signer + ": ") } }
    }

    /// What to do about an unsigned or untrusted module.
    static let advice =
        "sign it with a key the kernel trusts (`suture build … --sign`, with the DKMS key or --sign-key/--sign-cert), and enrol that key as a machine owner key once (`suture key create`, then `mokutil --import` and a reboot to confirm it)"

    /// The refusal for an unsigned module, in the words `load` also uses
    /// when the kernel itself refuses.
    static func unsignedRefusal(_ name: String, because reason: String) -> String {
        "\(name) is not signed, and \(reason), so the kernel loads only modules signed by a key it trusts: \(advice)"
    }

    static func untrustedRefusal(_ name: String, signer: String?, because reason: String) -> String {
        let who = signer.map { "signed by \"\($0)\"" } ?? "signed"
        return
            "\(name) is \(who), but that key is in none of the kernel's keyrings (/proc/keys), and \(reason), so the kernel refuses it: \(advice)"
    }

    /// Refuses `module` when the kernel would; returns a warning when it
    /// would load but taint the kernel.
    func check(_ module: ModuleFile) throws(LivepatchError) -> String? {
        guard sigEnforce != nil else { return nil }
        let name = module.name
        guard let signature = module.signature else {
            if let reason = enforcement {
                throw LivepatchError(.signatureRequired, Self.unsignedRefusal(name, because: reason))
            }
            return "\(name) is not signed: loading it taints the kernel (E, unsigned module); \(Self.advice)"
        }
        guard let signer = signature.signer, let trusted = trusts(signer), !trusted else { return nil }
        if let reason = enforcement {
            throw LivepatchError(.signatureRejected, Self.untrustedRefusal(name, signer: signer, because: reason))
        }
        return
            "\(name) is signed by \"\(signer)\", a key in none of the kernel's keyrings: loading it taints the kernel (E)"
    }

    /// The kernel's own refusal of a signature, in the same words as
    /// `check`; nil when `errno` is not about signatures.
    func explainRefusal(_ module: ModuleFile, errno: Errno?) -> LivepatchError? {
        let rejected = errno == Errno(rawValue: 129) || errno == Errno(rawValue: 126)  // EKEYREJECTED, ENOKEY
        let reason = enforcement ?? "the kernel checks module signatures"
        guard rejected || (errno == .notPermitted && enforcement != nil) else { return nil }
        let message =
            module.signature == nil
            ? Self.unsignedRefusal(module.name, because: reason)
            : Self.untrustedRefusal(module.name, signer: module.signature?.signer, because: reason)
        var error = LivepatchError(
            module.signature == nil ? .signatureRequired : .signatureRejected, errno: errno,
            "the kernel refused it: " + message)
        error.showsErrno = true
        return error
    }
}
