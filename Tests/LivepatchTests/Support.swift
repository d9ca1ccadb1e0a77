// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Livepatch
import Platform
import Testing

/// Progress lines a manager printed, collected for assertions.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    var lines: [String] { lock.withLock { stored } }
    var text: String { lines.joined(separator: "\n") }

    var sink: @Sendable (String) -> Void {
        { [self] line in lock.withLock { stored.append(line) } }
    }
}

/// Golden files in Fixtures/; `SUTURE_UPDATE_GOLDEN=1` rewrites them.
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures"
    ).path

    static func check(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = Path.join(directory, name)
        if ProcessInfo.processInfo.environment["SUTURE_UPDATE_GOLDEN"] == "1" {
            try FileSystem.write(path, actual)
            return
        }
        let expected = try FileSystem.readText(path)
        #expect(actual == expected, "differs from \(name)", sourceLocation: sourceLocation)
    }
}

/// The kind of `LivepatchError` that `body` throws; nil when it throws
/// nothing or another error.
func refusal(_ body: () throws -> Void) -> LivepatchError.Code? {
    do {
        try body()
        return nil
    } catch let error as LivepatchError {
        return error.kind
    } catch {
        return nil
    }
}
