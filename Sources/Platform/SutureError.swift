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
    /// The system error behind this one, when there is one.
    var errno: Errno? { get }
    /// The error this one wraps, kept with its own code and errno (an
    /// error rewrapped as text alone would lose them).
    var cause: (any SutureError)? { get }
    /// The changes refused, each with its object, function and reason, for
    /// `--json` (the message lists them as text too).
    var refusals: [RefusedChange] { get }
}

extension SutureError {
    public var exitStatus: Int32 { 1 }
    public var errno: Errno? { nil }
    public var cause: (any SutureError)? { nil }
    public var refusals: [RefusedChange] { [] }

    /// The error as `--json` prints it: code, message, the refusals when
    /// there are any, the errno and the chain of causes.
    public var json: JSON {
        var fields: [(String, JSON)] = [("code", .string(code)), ("message", .string(description))]
        if let errno { fields.append(("errno", .integer(Int(errno.rawValue)))) }
        if !refusals.isEmpty {
            fields.append(("refusals", .array(refusals.map(\.json))))
        }
        if let cause { fields.append(("cause", cause.json)) }
        return .object(fields)
    }
}

/// A change that cannot be live-patched: the object it is in, the
/// function (or other symbol), and why.
public struct RefusedChange: Sendable, Equatable {
    public let object: String
    public let function: String
    public let reason: String

    public init(object: String, function: String, reason: String) {
        self.object = object
        self.function = function
        self.reason = reason
    }

    public var json: JSON {
        .object([("object", .string(object)), ("function", .string(function)), ("reason", .string(reason))])
    }
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
