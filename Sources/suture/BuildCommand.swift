// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import KernelPatch
import Livepatch
import Platform
import TargetKernel

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Turn plain source diffs against the target kernel into a livepatch module.",
        discussion: """
            The diffs (patch -p1, applied in order, together one cumulative patch) are applied to a
            scratch copy of the distro's own source. Only the objects they touch are compiled, before
            and after, with the distro's config and compiler; the objects are diffed function by
            function; references the module loader cannot resolve become klp relocations, with symbol
            positions from the target's kallsyms (--kallsyms, else /proc/kallsyms of the running target,
            else a guest of the target kernel). The result is livepatch-NAME.ko for the kernel's
            livepatch core, with replace set unless --no-replace.
            Anything that cannot be live-patched is refused with its reason, and no module is written.
            """)

    @Argument(
        help: "Unified diffs against the kernel source, applied in order with patch -p1.",
        completion: .file(extensions: ["diff", "patch"]))
    var diffs: [String]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Target kernel release or image path (default: the running kernel if it can be live-patched, else the newest installed kernel with CONFIG_LIVEPATCH=y). Repeat it to build one module per kernel, each into DIR/RELEASE/.",
            valueName: "RELEASE|PATH"), completion: .custom(kernelReleaseCompletions))
    var kernel: [String] = []

    @Option(
        help: ArgumentHelp(
            "Use this source tarball or folder instead of the distro's source package.", valueName: "TARBALL|DIR"))
    var source: String?

    @Option(
        name: .customLong("source-diff"),
        help: ArgumentHelp(
            "A diff that turns the source into the one the kernel was built from (a vendor's change, or a neighbouring version's code): applied before the diffs and to the original side too, so it is not part of the patch; the run-pre check compares that original code with the shipped code. Repeatable.",
            valueName: "FILE"), completion: .file(extensions: ["diff", "patch"]))
    var sourceDiffs: [String] = []

    @Option(help: ArgumentHelp("The target's /proc/kallsyms, as root sees it.", valueName: "FILE"))
    var kallsyms: String?

    @Option(
        help: ArgumentHelp(
            "Module name: livepatch-NAME.ko (default: the first diff's name, reduced to [a-z0-9_], at most 40 characters).",
            valueName: "NAME"))
    var name: String?

    @Flag(
        name: .customLong("no-replace"),
        help: "Stack on earlier patches instead of replacing them (atomic replace is the default).")
    var noReplace = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the module into this folder.", valueName: "DIR"))
    var output = "."

    @Option(
        help: ArgumentHelp(
            "Cache folder for prepared trees (default: $SUTURE_CACHE, else /var/cache/suture).", valueName: "DIR"))
    var cache: String?

    @Flag(help: "Build even though the host compiler differs from the one that built the kernel.")
    var allowCompilerMismatch = false

    @Flag(help: "Build even when a changed header affects more than 20 objects.")
    var yes = false

    @Option(
        help: ArgumentHelp(
            "Let each hunk apply with up to N context lines ignored, as patch --fuzz does, for a diff made for a nearby kernel; hunks that needed fuzz or an offset are reported (default: 0, exact).",
            valueName: "N"))
    var fuzz = 0

    @Flag(help: "Sign the module with the DKMS machine owner key (/var/lib/dkms/mok.key, mok.pub).")
    var sign = false

    @Option(help: ArgumentHelp("Sign the module with this private key (with --sign-cert).", valueName: "KEY"))
    var signKey: String?

    @Option(help: ArgumentHelp("The signing key's X.509 certificate, PEM or DER.", valueName: "CERT"))
    var signCert: String?

    @Flag(
        name: .customLong("no-verify"),
        help:
            "Skip the run-pre check: do not compare the original code of the replaced and referenced functions with the code the kernel ships (for a kernel whose image cannot be had)."
    )
    var noVerify = false

    @Option(help: ArgumentHelp("What the patch fixes, one line; recorded in modinfo.", valueName: "TEXT"))
    var description: String?

    @Option(
        name: .customLong("cve"),
        help: ArgumentHelp(
            "A CVE the patch fixes (CVE-YYYY-NNNN), recorded in modinfo; repeat it or separate IDs with commas.",
            valueName: "ID[,ID…]"))
    var cveLists: [String] = []

    /// Every `--cve` once, by year and number (as readers of modinfo list them).
    var cves: [String] { SutureModinfo.sorted(cveLists.flatMap { $0.split(separator: ",").map(String.init) }) }

    @Flag(
        name: .customLong("keep-tmp"),
        help: "Keep the scratch folder (applied sources, objects, module build) and say where.")
    var keepScratch = false

    @OptionGroup var outputLevel: OutputLevelOption

    @OptionGroup var json: JSONOption

    func validate() throws {
        guard (0...3).contains(fuzz) else { throw ValidationError("--fuzz must be 0 to 3") }
        if let description, description.isEmpty || description.contains(where: { $0.isNewline || $0 == "\0" }) {
            throw ValidationError("--description must be one non-empty line")
        }
        for cve in cveLists.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) })
        where !SutureModinfo.isCVE(String(cve)) {
            throw ValidationError("--cve \(cve) is not a CVE ID (CVE-YYYY-NNNN)")
        }
        guard (signKey == nil) == (signCert == nil) else {
            throw ValidationError("--sign-key and --sign-cert go together")
        }
    }

    func run() throws {
        outputLevel.apply()
        if kernel.count > 1 {
            try runForEachKernel()
            return
        }
        try reportingErrors(json: json.json) {
            Cleanup.installSignalHandling()
            let target = try KernelResolver(catalog: CacheLocation.kernels(CacheLocation.root(cache))).resolve(
                kernel.first)
            let options = options(for: target, output: output)
            let started = Clock.now()
            let outcome = try KernelBuild.run(options) { Progress.say("suture: \($0)") }
            if json.json {
                printJSON(outcome.json)
                return
            }
            if outputLevel.quiet { return }
            var text = ""
            for hunk in outcome.hunks { text += "hunk: \(hunk.description)\n" }
            for warning in outcome.warnings { text += "warning: \(warning)\n" }
            for object in outcome.objects {
                text += "\(object.object) (\(object.target)):\n"
                if !object.changed.isEmpty { text += "  changed: \(object.changed.joined(separator: ", "))\n" }
                if !object.new.isEmpty { text += "  new:     \(object.new.joined(separator: ", "))\n" }
                if !object.ignored.isEmpty { text += "  ignored: \(object.ignored.joined(separator: ", "))\n" }
                if !object.callbacks.isEmpty { text += "  callbacks: \(object.callbacks.joined(separator: ", "))\n" }
                if !object.klpSymbols.isEmpty { text += "  klp:     \(object.klpSymbols.joined(separator: ", "))\n" }
            }
            text +=
                "redirects: "
                + outcome.redirects.map { "\($0.oldName)\($0.sympos > 0 ? ",\($0.sympos)" : "")" }.joined(
                    separator: ", ") + "\n"
            if let verification = outcome.verification {
                text += "run-pre check: \(verification.count) function(s) match the shipped code\n"
                for v in verification {
                    let sites = RewrittenSite.Kind.allCases.compactMap { k in v.masked[k].map { "\(k.rawValue) \($0)" }
                    }
                    text +=
                        "  \(v.function) (\(v.role.rawValue), \(v.expected.count) bytes; masked: relocations \(v.relocationBytes) bytes\(sites.isEmpty ? "" : ", " + sites.joined(separator: ", ")))\n"
                }
            } else {
                text += "run-pre check: skipped (--no-verify)\n"
            }
            text += "klp relocations: \(outcome.klpRelocations) in \(outcome.klpSections.count) section(s)\n"
            text +=
                "phases: "
                + outcome.phases.map { "\($0.name) \(String(format1: $0.seconds)) s" }.joined(separator: ", ")
                + "; suture's own processing \(String(format1: outcome.ownSeconds)) s; total \(String(format1: Clock.now() - started)) s\n"
            if let signed = outcome.signedWith { text += "signed with \(signed.certificate) (\(signed.hash))\n" }
            text += "wrote \(outcome.modulePath) (\(outcome.moduleName), replace=\(outcome.replace ? 1 : 0))\n"
            writeStandardOutput(text)
        }
    }

    /// The build's options for one target kernel.
    func options(for target: KernelRelease, output: String) -> BuildOptions {
        var options = BuildOptions(diffs: diffs, kernel: target)
        options.source = source
        options.sourceDiffs = sourceDiffs
        options.kallsyms = kallsyms
        options.kallsymsSource = GuestKallsyms()
        options.name = name
        options.replace = !noReplace
        options.outputDirectory = output
        options.cacheRoot = cache
        options.allowCompilerMismatch = allowCompilerMismatch
        options.assumeYes = yes
        options.fuzz = fuzz
        options.verify = !noVerify
        options.description = description
        options.cves = cves
        options.keepScratch = keepScratch
        if let signKey, let signCert {
            options.signing = SigningKey(key: signKey, certificate: signCert)
        } else if sign {
            options.signing = .dkms
        }
        return options
    }
}

extension String {
    /// A number with one decimal, without Foundation's formatting.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
