// SPDX-License-Identifier: GPL-2.0-only
import Platform
import SystemPackage

/// Failures of a throwaway guest: building its initramfs, starting QEMU,
/// talking to the guest agent.
///
/// `suture vm` maps every one of them to exit status 125 ("the VM or Suture
/// failed"), except usage errors, which are 64.
public struct VMError: SutureError {
    public enum Code: String, Sendable {
        /// A tool the VM needs (QEMU, ldd, a decompressor) is missing or failed.
        case missingTool = "vm-missing-tool"
        /// A file to add, a module, the kernel image: something on the host is unusable.
        case badInput = "vm-bad-input"
        /// QEMU could not start or stopped unexpectedly.
        case qemuFailed = "vm-qemu-failed"
        /// The guest did not come up within the boot time bound.
        case bootTimeout = "vm-boot-timeout"
        /// The host–guest channel broke or carried something malformed.
        case protocolError = "vm-protocol"
        /// The guest agent reported a failure (e.g. an upload it could not write).
        case guestFailed = "vm-guest-failed"
        /// The machine was already shut down (after a timeout or panic).
        case notRunning = "vm-not-running"
        /// A system call on the host failed.
        case system = "vm-system"
        case usage = "usage"
    }

    public var kind: Code
    public var message: String
    public var errno: Errno?

    public init(_ kind: Code, _ message: String, errno: Errno? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    /// Wraps a platform failure with what the VM was doing.
    public init(_ kind: Code = .system, _ context: String, _ error: PlatformError) {
        self.init(kind, "\(context): \(error.description)", errno: error.errno)
    }

    public var code: String { kind.rawValue }
    public var description: String { message }
    public var exitStatus: Int32 { kind == .usage ? 64 : 125 }
}
