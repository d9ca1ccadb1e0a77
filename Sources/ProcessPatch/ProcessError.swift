// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Failures and refusals of the process patcher, each naming the process,
/// file or function concerned.
public struct ProcessError: SutureError {
    public enum Code: String, Sendable {
        /// The process does not exist or has exited.
        case noSuchProcess = "process-not-found"
        /// Another user's process, and we are not root.
        case permission = "process-permission"
        /// No mapped object has the patch's build-id.
        case buildIDMismatch = "process-build-id-mismatch"
        /// An old function's bytes in memory differ from the patch's record.
        case preCodeMismatch = "process-pre-code-mismatch"
        /// A symbol the patch needs is not in the target.
        case unresolved = "process-unresolved-symbol"
        /// Threads stayed inside functions being replaced until the timeout.
        case busy = "process-busy"
        /// ptrace, injection or memory access failed.
        case trace = "process-trace"
        /// A patch file that cannot be read or does not fit.
        case badPatch = "process-bad-patch"
        /// `suture process build` failed (build, patch, compile, diff).
        case build = "process-build"
        /// A change that cannot be live-patched.
        case refused = "process-refused"
        /// The patch state found in the target is unusable.
        case state = "process-state"
        /// Nothing to do (no patch applied, no change).
        case nothing = "process-nothing"
        /// Stopped by a signal to suture.
        case interrupted = "process-interrupted"
    }

    public var kind: Code
    public var message: String
    public var cause: (any SutureError)?
    public var refusals: [RefusedChange]

    public init(_ kind: Code, _ message: String, cause: (any SutureError)? = nil, refusals: [RefusedChange] = []) {
        self.kind = kind
        self.message = message
        self.cause = cause
        self.refusals = refusals
    }

    public var code: String { kind.rawValue }
    public var description: String { message }
}

extension PlatformError {
    /// The same failure as a process-patcher error with context.
    func process(_ kind: ProcessError.Code = .trace, _ context: String) -> ProcessError {
        ProcessError(kind, "\(context): \(description)")
    }
}
