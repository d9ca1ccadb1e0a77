// SPDX-License-Identifier: GPL-2.0-only
import Platform

/// The `suture` executable under test. The tests build nothing: they use
/// `SUTURE_BINARY`, else the `suture` that `swift build` put beside the
/// test bundle in the same `.build/<config>/` folder.
public enum SutureBinary {
    public static let path: String = {
        if let given = FileSystem.environment("SUTURE_BINARY"), !given.isEmpty { return given }
        // /proc/self/exe is …/.build/<config>/<package>PackageTests.xctest.
        let bundle = (try? FileSystem.readLink("/proc/self/exe")) ?? CommandLine.arguments[0]
        return Path.join(Path.directory(of: bundle), "suture")
    }()

    /// The path, or a clear error when the binary is missing.
    public static func checked() throws(TestError) -> String {
        guard FileSystem.exists(path) else {
            throw TestError("no suture binary at \(path): run `swift build -c release` first, or set SUTURE_BINARY")
        }
        return path
    }

    /// Runs suture to completion.
    public static func run(
        _ arguments: [String], environment: [String: String]? = nil,
        timeout: Double? = nil
    ) throws -> CommandResult {
        try Command.run([try checked()] + arguments, environment: environment, timeout: timeout)
    }
}

/// A failure of a test's own setup (a missing tool, binary or fixture),
/// as opposed to a failed expectation.
public struct TestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A scratch folder for one test, removed when the value goes away.
public final class Scratch: @unchecked Sendable {
    private let directory: TemporaryDirectory
    public var path: String { directory.path }

    public init(_ prefix: String = "suture-test") throws {
        directory = try TemporaryDirectory(prefix: prefix)
    }

    /// `name` inside the folder.
    public func file(_ name: String) -> String { Path.join(path, name) }

    /// Writes `contents` to `name` (creating folders) and returns its path.
    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> String {
        let target = file(name)
        try FileSystem.makeDirectories(Path.directory(of: target))
        try FileSystem.write(target, contents)
        return target
    }

    deinit { directory.remove() }
}
