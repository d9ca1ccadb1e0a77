// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Failures of the object diff: inputs it cannot diff, and refusals of
/// changes that cannot be live-patched (all listed at once).
public struct PatchCoreError: SutureError {
    public enum Code: String, Sendable {
        case unsupportedInput = "diff-unsupported-input"
        case refused = "diff-refused"
        case noChange = "diff-no-change"
        /// An object that cannot be read as ELF.
        case unreadable = "diff-unreadable"
    }

    public var kind: Code
    public var message: String
    /// The refusals of one object, by symbol.
    public var refused: [Refusal]
    /// The object the refusals are in.
    public var object: String
    public var cause: (any SutureError)?

    public init(
        _ kind: Code, _ message: String, object: String = "", refusals: [Refusal] = [],
        cause: (any SutureError)? = nil
    ) {
        self.kind = kind
        self.message = message
        self.object = object
        self.refused = refusals
        self.cause = cause
    }

    /// `refused`, for `--json`.
    public var refusals: [RefusedChange] {
        refused.map { RefusedChange(object: object, function: $0.symbol, reason: $0.reason) }
    }

    public var code: String { kind.rawValue }

    public var description: String {
        guard !refused.isEmpty else { return message }
        return message + "\n" + refused.map { "  \($0.symbol): \($0.reason)" }.joined(separator: "\n")
    }
}

/// Something that cannot be live-patched, named by its symbol.
public struct Refusal: Sendable, Equatable {
    public let symbol: String
    public let reason: String

    public init(symbol: String, reason: String) {
        self.symbol = symbol
        self.reason = reason
    }
}
