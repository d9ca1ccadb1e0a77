// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import KernelPatch
import Platform

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage the key that signs live patches for Secure Boot machines.",
        subcommands: [KeyCreateCommand.self])
}

struct KeyCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a module signing key pair the way DKMS does, unless one exists.",
        discussion: """
            Writes the private key and a DER certificate (RSA 2048, code signing, valid 100 years)
            to /var/lib/dkms/mok.key and mok.pub, where DKMS and `suture build --sign` look for them.
            An existing key is never overwritten. The kernel trusts the key once it is enrolled as a
            machine owner key: `mokutil --import CERT`, then reboot and confirm it in MokManager.
            """)

    @Option(help: ArgumentHelp("Where to write the private key.", valueName: "FILE"))
    var key = SigningKey.dkms.key

    @Option(help: ArgumentHelp("Where to write the certificate (DER).", valueName: "FILE"))
    var cert = SigningKey.dkms.certificate

    @Option(
        help: ArgumentHelp(
            "The certificate's common name: the signer `modinfo` and `suture list` show.", valueName: "CN"))
    var commonName = SigningKey.dkmsCommonName

    @OptionGroup var json: JSONOption

    func run() throws {
        try reportingErrors(json: json.json) {
            let pair = SigningKey(key: key, certificate: cert)
            let created = try pair.create(commonName: commonName)
            let enrol = "mokutil --import \(cert)"
            if json.json {
                printJSON(
                    .object([
                        ("key", .string(key)), ("certificate", .string(cert)), ("created", .bool(created)),
                        ("enrol", .string(enrol)),
                    ]))
                return
            }
            var text =
                created
                ? "created \(key) and \(cert) (CN=\(commonName))\n"
                : "a key pair exists already: \(key), \(cert); left as it is\n"
            text += """
                to let a Secure Boot machine load patches signed with it, enrol the certificate once:
                  sudo \(enrol)       (choose a one-time password)
                  reboot, then in the blue MokManager screen: Enroll MOK → Continue → Yes → the password
                then build signed patches with `suture build --sign …`\(key == SigningKey.dkms.key ? "" : " --sign-key \(key) --sign-cert \(cert)")

                """
            writeStandardOutput(text)
        }
    }
}
