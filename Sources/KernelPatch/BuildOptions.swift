// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// What `suture build` is asked to do.
public struct BuildOptions: Sendable {
    public var diffs: [String]
    public var kernel: KernelRelease
    public var source: String?
    /// `--source-diff`: diffs that turn the prepared source into the source
    /// the kernel was built from (a vendor's change, a neighbouring
    /// version's code). Applied to the original side as well as before the
    /// patch's diffs, so they are not part of the patch; the run-pre check
    /// then compares that original code with the shipped code.
    public var sourceDiffs: [String] = []
    public var kallsyms: String?
    /// Kallsyms when neither `kallsyms` nor the running kernel gives them.
    public var kallsymsSource: (any KallsymsSource)?
    public var name: String?
    public var replace = true
    public var outputDirectory = "."
    public var cacheRoot: String?
    public var allowCompilerMismatch = false
    /// Build even when a header change affects more than
    /// `KernelBuild.confirmationThreshold` objects.
    public var assumeYes = false
    /// Context lines `patch` may ignore per hunk (`--fuzz N`); 0 is exact.
    public var fuzz = 0
    /// What the patch fixes, recorded in modinfo (`suture.description`,
    /// one `suture.cve` per ID).
    public var description: String?
    public var cves: [String] = []
    /// Keep the scratch folder instead of removing it (`--keep-tmp`).
    public var keepScratch = false
    /// Sign the module with this key pair (`--sign`, `--sign-key`).
    public var signing: SigningKey?
    /// The run-pre check (`RunPre`); off with `--no-verify`.
    public var verify = true

    public init(diffs: [String], kernel: KernelRelease) {
        self.diffs = diffs
        self.kernel = kernel
    }
}

/// What `suture build` made.
public struct BuildOutcome: Sendable {
    public struct ObjectSummary: Sendable {
        public let object: String
        public let target: String
        public let changed: [String]
        public let new: [String]
        /// Changed functions the author excluded (KPATCH_IGNORE_*).
        public let ignored: [String]
        /// Callbacks: `stage=function`.
        public let callbacks: [String]
        public let klpSymbols: [String]
    }

    public let modulePath: String
    public let moduleName: String
    public let release: String
    public let replace: Bool
    public let diffs: [SourceDiff]
    /// The `--source-diff` diffs the original side was built with.
    public var sourceDiffs: [SourceDiff] = []
    public let objects: [ObjectSummary]
    public let redirects: [FunctionRedirect]
    public let klpSections: [String]
    public let klpRelocations: Int
    public let phases: [(name: String, seconds: Double)]
    /// Seconds spent in Suture's own processing, outside gcc and kbuild.
    public let ownSeconds: Double
    /// Hunks that applied with fuzz or at an offset.
    public var hunks: [AppliedHunk] = []
    /// What was dropped or may need attention (added exports).
    public var warnings: [String] = []
    public var description: String?
    public var cves: [String] = []
    /// The scratch folder, when kept.
    public var scratch: String?
    /// The certificate the module was signed with, and the hash; nil when unsigned.
    public var signedWith: (certificate: String, hash: String)?
    /// Who clears module objects' klp relocations, read from the target's
    /// livepatch core (`klp_clear_object_relocs` is there from 6.6 on).
    public var relocationClearing: String?
    /// The build root the objects and module were compiled in, or nil for the host.
    public var buildRoot: String?
    /// The run-pre check of each function; nil when skipped (`--no-verify`).
    public var verification: [RunPre.Verification]?

    public var json: JSON {
        .object([
            ("module", .string(modulePath)),
            ("name", .string(moduleName)),
            ("release", .string(release)),
            ("replace", .bool(replace)),
            ("description", .optional(description)),
            ("cves", .strings(cves)),
            ("diffs", .array(diffs.map { .object([("path", .string($0.path)), ("sha256", .string($0.digest))]) })),
            (
                "sourceDiffs",
                .array(sourceDiffs.map { .object([("path", .string($0.path)), ("sha256", .string($0.digest))]) })
            ),
            (
                "objects",
                .array(
                    objects.map {
                        .object([
                            ("object", .string($0.object)), ("target", .string($0.target)),
                            ("changed", .strings($0.changed)), ("new", .strings($0.new)),
                            ("ignored", .strings($0.ignored)), ("callbacks", .strings($0.callbacks)),
                            ("klpSymbols", .strings($0.klpSymbols)),
                        ])
                    })
            ),
            (
                "functions",
                .array(
                    redirects.map {
                        .object([
                            ("target", .string($0.target.name)), ("name", .string($0.oldName)),
                            ("sympos", .integer($0.sympos)),
                            ("object", .string($0.object)),
                        ])
                    })
            ),
            ("klpSections", .strings(klpSections)),
            ("klpRelocations", .integer(klpRelocations)),
            ("phases", .object(phases.map { ($0.name, .double(($0.seconds * 1000).rounded() / 1000)) })),
            ("ownSeconds", .double((ownSeconds * 1000).rounded() / 1000)),
            ("hunks", .array(hunks.map(\.json))),
            ("warnings", .strings(warnings)),
            ("scratch", .optional(scratch)),
            ("signed", .bool(signedWith != nil)),
            ("signingCertificate", .optional(signedWith?.certificate)),
            ("signatureHash", .optional(signedWith?.hash)),
            ("relocationClearing", .optional(relocationClearing)),
            ("buildRoot", .optional(buildRoot)),
            (
                "verification",
                verification.map { v in
                    .object([("status", .string("verified")), ("functions", .array(v.map(\.json)))])
                }
                    ?? .object([
                        ("status", .string("skipped")),
                        (
                            "skipped",
                            .string(
                                "--no-verify: the original code was not compared with the shipped code")
                        ),
                    ])
            ),
        ])
    }
}
