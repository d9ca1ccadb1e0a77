// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Failures about target kernels: resolving, preparing trees, compiling.
public struct KernelError: SutureError {
    public enum Code: String, Sendable {
        case noKernel = "no-kernel"
        case unknownKernel = "unknown-kernel"
        case noLivepatch = "no-livepatch"
        case missingPiece = "missing-piece"
        case sourceMismatch = "source-mismatch"
        case compilerMismatch = "compiler-mismatch"
        case prepareFailed = "prepare-failed"
        case compileFailed = "compile-failed"
        case notPristine = "not-pristine"
        case usage = "usage"
        /// A Debian suite's archive could not be reached (`suture kernel fetch`).
        case suiteUnreachable = "suite-unreachable"
        /// More work than the caller allowed without confirmation.
        case tooMany = "too-many"
    }

    public var kind: Code
    public var message: String
    public var cause: (any SutureError)?

    public init(_ kind: Code, _ message: String, cause: (any SutureError)? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
    }

    public var code: String { kind.rawValue }
    public var description: String { message }
    public var exitStatus: Int32 { kind == .usage ? 64 : 1 }
}
