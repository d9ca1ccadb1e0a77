// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// Failures of the object diff: inputs it cannot diff, and refusals of
/// changes that cannot be live-patched (all listed at once).
public struct PatchCoreError: SutureError {
    public enum Code: String, Sendable {
        case unsupportedInput = "diff-unsupported-input"
        case refused = "diff-refused"
        case noChange = "diff-no-change"
    }

    public var kind: Code
    public var message: String
    public var refusals: [Refusal]

    public init(_ kind: Code, _ message: String, refusals: [Refusal] = []) {
        self.kind = kind
        self.message = message
        self.refusals = refusals
    }

    public var code: String { kind.rawValue }

    public var description: String {
        guard !refusals.isEmpty else { return message }
        return message + "\n" + refusals.map { "  \($0.symbol): \($0.reason)" }.joined(separator: "\n")
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
