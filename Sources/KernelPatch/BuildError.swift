// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Failures of `suture build`: diffs that do not apply or are not
/// supported, refusals, symbols that cannot be resolved, kbuild failures.
public struct BuildError: SutureError {
    public enum Code: String, Sendable {
        case usage = "build-usage"
        case diffDoesNotApply = "build-diff-does-not-apply"
        case unsupportedChange = "build-unsupported-change"
        case refused = "build-refused"
        case noFunctionalChange = "build-no-functional-change"
        case unresolvedSymbol = "build-unresolved-symbol"
        case ambiguousSymbol = "build-ambiguous-symbol"
        case linkFailed = "build-link-failed"
        /// The original code is not the target's shipped code (run-pre check).
        case codeMismatch = "build-code-mismatch"
        /// The shipped code to check against cannot be had.
        case missingImage = "build-missing-image"
        case io = "build-io"
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
    public var exitStatus: Int32 { kind == .usage ? 64 : 1 }
}
