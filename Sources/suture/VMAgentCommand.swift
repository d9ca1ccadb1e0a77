// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Platform
import VM

/// The guest side of `suture vm`, started by the guest's /init. Hidden:
/// it speaks a binary protocol on a serial port and is of no use on a host.
struct VMAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm-agent",
        abstract: "Serve `suture vm` requests inside the guest (internal).",
        shouldDisplay: false)

    @Argument(help: "The serial device that carries the host channel.")
    var device: String

    func run() throws {
        try reportingErrors(json: false) {
            try GuestAgent(device: device).serve()
        }
    }
}
