// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Platform

/// The `suture` executable under test. The tests build nothing: they use
/// `SUTURE_BINARY`, else the `suture` that `swift build` put beside the
/// test bundle in the same `.build/<config>/` folder.
enum SutureBinary {
    static let path: String = {
        if let given = ProcessInfo.processInfo.environment["SUTURE_BINARY"], !given.isEmpty {
            return given
        }
        // /proc/self/exe is …/.build/<config>/<package>PackageTests.xctest.
        let bundle = (try? FileSystem.readLink("/proc/self/exe")) ?? CommandLine.arguments[0]
        return Path.join(Path.directory(of: bundle), "suture")
    }()

    /// Fails with a clear message when the binary is missing.
    static func checked() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw IntegrationError("no suture binary at \(path): run `swift build -c release` first, or set SUTURE_BINARY")
        }
        return path
    }
}

struct IntegrationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
