// SPDX-License-Identifier: GPL-2.0-only
import TargetKernel

/// A patched compile that fails. The compiler's error comes first, as
/// kbuild printed it; then a hint, because the usual cause in a real fix is
/// a type, field or macro that the fix changes in a header which the diff
/// does not carry.
enum PatchedCompileFailure {
    static func explaining<T>(_ applied: DiffApplier.Result, _ body: () throws(KernelError) -> T) throws(KernelError)
        -> T
    {
        do {
            return try body()
        } catch  where error.kind == .compileFailed {
            throw KernelError(.compileFailed, error.message + "\n" + hint(applied))
        }
    }

    static func hint(_ applied: DiffApplier.Result) -> String {
        let headers = applied.files.map(\.path).filter { $0.hasSuffix(".h") }
        let changed =
            headers.isEmpty
            ? "the diffs change no header"
            : "the diffs change \(headers.joined(separator: ", "))"
        return
            "Hint: the patched source does not compile (\(changed)). If the fix uses a type, field, function or macro that it changes or adds in a header, that header's change belongs in the diff too; suture then rebuilds every object that includes it."
    }
}
