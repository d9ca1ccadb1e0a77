// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import Synchronization
import TestSupport

/// One guest of the fleet: a kept Debian guest (`TestDebianGuest`) and
/// its name in the inventory.
struct FleetGuest: Sendable {
    let host: String
    let guest: TestDebianGuest

    /// Runs a command that must succeed; its stdout.
    func check(_ command: String) throws -> String { try guest.checked(command) }

    /// A JSON object printed by a command in the guest.
    func json(_ command: String) throws -> [String: Any] {
        let text = try check(command)
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw TestError("\(host): \(command) printed no JSON object: \(text)")
        }
        return object
    }

    /// The names of the loaded live patches (`suture list --json`).
    func loaded() throws -> [String] {
        (try json("suture list --json")["patches"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }

    /// The names of the patches installed for the running kernel.
    func installed() throws -> [String] {
        (try json("suture list --installed --json")["installed"] as? [[String: Any]] ?? []).compactMap {
            $0["name"] as? String
        }
    }

}

/// Three Debian guests booted in parallel (`suture vm --image debian
/// --keep`), an inventory for them, and the
/// collection in `ansible/` made visible to ansible-playbook.
final class Fleet: @unchecked Sendable {
    let guests: [FleetGuest]
    let scratch: Scratch
    let bootSeconds: Double

    static let collection = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ansible").path

    /// Boots `count` guests at once (`suture vm --image debian --keep`).
    init(count: Int) throws {
        scratch = try Scratch("suture-fleet")
        let names = (1...count).map { "fleet-\(getpid())-\($0)" }
        let results = Mutex<[Int: Result<TestDebianGuest, any Error>]>([:])
        let group = DispatchGroup()
        let started = Clock.now()
        for (index, name) in names.enumerated() {
            group.enter()
            Thread.detachNewThread {
                let result = Result { try TestDebianGuest.start(name) }
                results.withLock { $0[index] = result }
                group.leave()
            }
        }
        group.wait()
        bootSeconds = Clock.now() - started
        var guests: [FleetGuest] = []
        var failures: [String] = []
        for index in names.indices {
            switch results.withLock({ $0[index]! }) {
            case .success(let guest): guests.append(FleetGuest(host: "guest\(index + 1)", guest: guest))
            case .failure(let error): failures.append("\(error)")
            }
        }
        self.guests = guests
        guard failures.isEmpty else {
            stop()
            throw TestError(failures.joined(separator: "\n"))
        }
        try FileSystem.makeDirectories(scratch.file("collections/ansible_collections/suture"))
        try FileSystem.symlink(
            target: Self.collection, at: scratch.file("collections/ansible_collections/suture/livepatch"))
        var inventory = "[fleet]\n"
        for guest in guests {
            inventory +=
                "\(guest.host) ansible_host=127.0.0.1 ansible_port=\(guest.guest.sshPort) ansible_user=root "
                + "ansible_ssh_private_key_file=\(guest.guest.sshKey)\n"
        }
        inventory += """
            [fleet:vars]
            ansible_python_interpreter=/usr/bin/python3
            ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'

            """
        try scratch.write("inventory.ini", inventory)
    }

    /// Ends every guest (`suture vm --stop`).
    func stop() {
        for guest in guests { guest.guest.stop() }
    }

    var environment: [String: String] {
        Command.environment([
            "ANSIBLE_COLLECTIONS_PATH": scratch.file("collections"),
            "ANSIBLE_HOME": scratch.file("ansible-home"),
            "ANSIBLE_LOCAL_TEMP": scratch.file("ansible-tmp"),
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": nil,
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        ])
    }

    /// Runs the rollout playbook with extra variables (as JSON); its
    /// result and the report it wrote.
    func rollout(_ variables: [String: Any]) throws -> (result: CommandResult, report: [String: Any]) {
        let report = scratch.file("report-\(UUID().uuidString).json")
        var all = variables
        all["suture_report"] = report
        let extra = String(decoding: try JSONSerialization.data(withJSONObject: all), as: UTF8.self)
        let result = try Command.run(
            [
                "ansible-playbook", "-i", scratch.file("inventory.ini"), "suture.livepatch.rollout", "-e", extra,
            ], environment: environment, timeout: 900)
        let text = FileSystem.readTextIfPresent(report) ?? ""
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        guard let object else {
            throw TestError(
                "the rollout wrote no report (\(result.termination)):\n\(Command.tail(result.stdoutText, lines: 60))")
        }
        return (result, object)
    }

    /// Runs one module on some hosts (`ansible HOSTS -m MODULE -a ARGS`).
    func adHoc(_ hosts: String, _ module: String, _ arguments: String, check: Bool = false) throws -> CommandResult {
        try Command.run(
            ["ansible", "-i", scratch.file("inventory.ini"), hosts, "-m", module, "-a", arguments, "-o"]
                + (check ? ["--check"] : []), environment: environment, timeout: 300)
    }

    /// The PLAY RECAP's `changed=N` of a host.
    static func changedCount(_ output: String, host: String) -> Int? {
        for line in output.split(separator: "\n") where line.hasPrefix(host + " ") && line.contains("changed=") {
            let field = line.split(separator: " ").first { $0.hasPrefix("changed=") }
            return field.flatMap { Int($0.dropFirst("changed=".count)) }
        }
        return nil
    }
}
