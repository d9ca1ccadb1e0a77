// SPDX-License-Identifier: GPL-2.0-only
import SystemPackage

/// An error that the CLI can report: a stable machine-readable code, a
/// human message with its context, and the exit status it maps to.
///
/// Every target defines one error struct conforming to this protocol. Library
/// code throws these; only the CLI turns them into messages and exit codes.
public protocol SutureError: Error, CustomStringConvertible {
    /// A stable kebab-case identifier, such as `elf-truncated`.
    var code: String { get }
    /// The process exit status: 1 for failure or refusal, 64 for misuse.
    var exitStatus: Int32 { get }
}

extension SutureError {
    public var exitStatus: Int32 { 1 }
}

/// Failures of the platform layer: system calls and child processes.
public struct PlatformError: SutureError {
    public enum Code: String, Sendable {
        case systemCall = "system-call"
        case spawn = "spawn"
        case childFailed = "child-failed"
        case invalidData = "invalid-data"
        case lockTimeout = "lock-timeout"
        case notFound = "not-found"
    }

    public var kind: Code
    public var errno: Errno?
    /// What was being done, e.g. `open /boot/config-6.1.0-57-amd64`.
    public var context: String

    public init(_ kind: Code, errno: Errno? = nil, _ context: String) {
        self.kind = kind
        self.errno = errno
        self.context = context
    }

    public var code: String { kind.rawValue }

    public var description: String {
        if let errno {
            return "\(context): \(errno.shortDescription)"
        }
        return context
    }
}

extension Errno {
    /// `strerror` text without the "Errno(...)" decoration swift-system adds.
    public var shortDescription: String {
        guard let text = strerror(rawValue) else { return "error \(rawValue)" }
        return string(fromCString: text)
    }
}

#if canImport(Glibc)
import Glibc
#endif
