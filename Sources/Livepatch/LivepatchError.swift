// SPDX-License-Identifier: GPL-2.0-only
import Platform
import SystemPackage

/// Why a live-patch operation on the running kernel failed or was refused.
public struct LivepatchError: SutureError {
    public enum Code: String, Sendable {
        /// The module file does not exist or cannot be read.
        case missingFile = "livepatch-missing-file"
        /// The file is not a kernel module at all.
        case notModule = "livepatch-not-module"
        /// A kernel module, but without `livepatch=Y` in its modinfo.
        case notLivepatch = "livepatch-not-livepatch"
        /// Built for another kernel release than the running one.
        case vermagic = "livepatch-vermagic"
        /// The kernel has no `/sys/kernel/livepatch`.
        case unsupported = "livepatch-unsupported"
        /// The caller is not root.
        case notRoot = "livepatch-not-root"
        /// Another suture process held the kernel lock for too long.
        case locked = "livepatch-locked"
        /// A module parameter is unknown or cannot be passed.
        case parameter = "livepatch-parameter"
        /// A module of that name is loaded already.
        case alreadyLoaded = "livepatch-already-loaded"
        /// Another patch is in transition; the kernel allows one at a time.
        case busy = "livepatch-busy"
        /// The kernel accepts only signed modules and this one is unsigned.
        case signatureRequired = "livepatch-signature-required"
        /// The module's signer is not a key the kernel trusts.
        case signatureRejected = "livepatch-signature-rejected"
        /// `finit_module` failed.
        case loadFailed = "livepatch-load-failed"
        /// The transition did not finish in time; it was reversed.
        case timeout = "livepatch-timeout"
        /// A transition, its reversal or a removal could not finish.
        case stuck = "livepatch-stuck"
        /// No livepatch module of that name is loaded.
        case notLoaded = "livepatch-not-loaded"
        /// `delete_module` failed.
        case removeFailed = "livepatch-remove-failed"
        /// `force` without confirmation, or with no transition to force.
        case force = "livepatch-force"
        /// Reading or writing a kernel interface failed.
        case io = "livepatch-io"
        /// No patch of that name is installed in the store.
        case notInstalled = "livepatch-not-installed"
        /// A store file is unreadable or does not match its record.
        case corruptStore = "livepatch-store-corrupt"
        /// Reading or writing the patch store (`/var/lib/suture`) failed.
        case store = "livepatch-store"
    }

    public var kind: Code
    public var errno: Errno?
    public var message: String
    /// Whether the description ends with the errno's text; false when the
    /// message already says it.
    public var showsErrno = true

    public init(_ kind: Code, errno: Errno? = nil, _ message: String) {
        self.kind = kind
        self.errno = errno
        self.message = message
    }

    public var code: String { kind.rawValue }

    public var description: String {
        if let errno, showsErrno { return "\(message): \(errno.shortDescription)" }
        return message
    }

    /// Wraps a platform failure with what was being done.
    static func io(_ error: PlatformError, _ doing: String) -> LivepatchError {
        LivepatchError(.io, errno: error.errno, "\(doing): \(error.context)")
    }
}
