// SPDX-License-Identifier: GPL-2.0-only
import Foundation
import Glibc
import Platform
import TestSupport
import Testing

/// A real Debian package patched live with a real upstream fix: bookworm's
/// tinyproxy source (fetched with `apt-get source`, cached), built without
/// Debian's CVE-2023-49606 patch by `suture process build --deb` with that
/// fix (upstream commit 12a84842), installed with `dpkg -i` in a Debian
/// guest where systemd starts `tinyproxy.service`. A client loops through
/// the proxy while the fix is applied and reverted; it never sees an error.
/// Needs deb.debian.org on a fresh cache.
@Suite(.serialized)
struct TinyproxyGuestTests {
    static let fixtures = Path.join(
        Path.directory(of: Path.directory(of: #filePath)), "ProcessPatchTests/Fixtures/tinyproxy")

    /// The bookworm source package, downloaded once into
    /// `SUTURE_CACHE/test-sources/tinyproxy` with a private apt state,
    /// unpacked into `dest` as `apt-get source` does (its patches applied),
    /// then with the CVE-2023-49606 patch taken out again.
    static func unpackSource(into dest: String) throws {
        let cache = Path.join(
            FileSystem.environment("SUTURE_CACHE") ?? "/var/cache/suture", "test-sources/tinyproxy")
        let script = """
            set -e
            cache='\(cache)'
            if ! ls "$cache"/*.dsc >/dev/null 2>&1; then
              tmp=$(mktemp -d); mkdir -p "$tmp/lists/partial" "$tmp/empty" "$tmp/get"
              key=/usr/share/keyrings/debian-archive-keyring.gpg
              echo "deb-src [signed-by=$key] http://deb.debian.org/debian bookworm main" > "$tmp/sources.list"
              echo "deb-src [signed-by=$key] http://deb.debian.org/debian-security bookworm-security main" >> "$tmp/sources.list"
              set -- -q -o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts="$tmp/empty" \
                -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o Debug::NoLocking=1 \
                -o APT::Sandbox::User=root
              apt-get "$@" update >/dev/null
              (cd "$tmp/get" && apt-get "$@" source --download-only tinyproxy >/dev/null)
              mkdir -p "$(dirname "$cache")"; rm -rf "$cache.new"; mv "$tmp/get" "$cache.new"
              mv -T "$cache.new" "$cache" 2>/dev/null || rm -rf "$cache.new"; rm -rf "$tmp"
            fi
            dpkg-source --no-check -x "$cache"/*.dsc '\(dest)' >/dev/null
            cd '\(dest)'
            fix=$(grep CVE-2023-49606 debian/patches/series)
            patch -R -s -p1 < "debian/patches/$fix"
            sed -i /CVE-2023-49606/d debian/patches/series .pc/applied-patches
            rm -rf ".pc/$fix"
            """
        _ = try Command.output(["sh", "-c", script])
    }

    /// tinyproxy reads with SO_RCVTIMEO, so a read that a stop breaks off
    /// returns EINTR unless the tracer restarts it (`InterruptedCallTests`):
    /// before that, 1 or 2 requests per run got an empty answer.
    @Test func tinyproxyIsPatchedUnderLoadWithItsUpstreamFix() async throws {
        let scratch = try TemporaryDirectory(prefix: "suture-tinyproxy")
        defer { scratch.remove() }
        let package = Path.join(scratch.path, "tinyproxy")
        var started = Clock.now()
        try Self.unpackSource(into: package)
        let fetched = Clock.now() - started
        let patch = Path.join(scratch.path, "fix.patch.o")
        started = Clock.now()
        let build = try SutureBinary.run([
            "process", "build", Path.join(Self.fixtures, "CVE-2023-49606.diff"), "--deb", package,
            "--binary", "/usr/bin/tinyproxy", "-o", patch, "--json",
        ])
        try #require(build.termination == .exited(0), "process build --deb: \(build.stdoutText)\(build.stderrText)")
        let built = try JSON.parse(build.stdout)
        print(
            "TinyproxyGuestTests: source in \(Int(fetched)) s, built in \(Int(Clock.now() - started)) s: \(built.serialized())"
        )
        let debs = (built["packages"]?.arrayValue ?? []).compactMap { $0.stringValue }
        #expect(debs.count == 2, "\(debs)")

        try await GuestLock.withLock {
            let started = Clock.now()
            let guest = try TestDebianGuest.start("tinyproxy-\(getpid())")
            defer { guest.stop() }
            for deb in debs { try guest.copy(deb, to: "/root/\(Path.base(of: deb))") }
            try guest.copy(patch, to: "/root/fix.patch.o")
            try guest.copy(Path.join(Self.fixtures, "client.py"), to: "/root/client.py")
            // The minbase guest has neither adduser nor logrotate: the user
            // the postinst would add is made first, logrotate is left out.
            try guest.checked(
                "groupadd --system tinyproxy && useradd --system -g tinyproxy -d /run/tinyproxy -s /bin/false tinyproxy"
                    + " && dpkg -i --force-depends /root/*.deb")
            try guest.checked(
                "mkdir -p /root/www && echo suture-origin > /root/www/page && systemd-run --unit=origin --quiet "
                    + "python3 -m http.server 8000 --bind 127.0.0.1 --directory /root/www")
            let journal = try guest.checked("journalctl -o cat -u tinyproxy.service | tail")
            #expect(try guest.ssh("systemctl is-active tinyproxy.service").stdoutText == "active\n", "\(journal)")
            let pid = try guest.checked("systemctl show -p MainPID --value tinyproxy.service")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try guest.checked("readlink /proc/\(pid)/exe") == "/usr/bin/tinyproxy\n")
            // The origin answers through the proxy before the load starts.
            let first = try guest.ssh("for i in $(seq 50); do python3 /root/client.py close && break; sleep 0.2; done")
            #expect(first.termination == .exited(0), "\(first.stdoutText)\(first.stderrText)")

            try guest.checked("systemd-run --unit=proxy-load --quiet python3 /root/client.py")
            func answered() throws -> Int {
                Int(
                    try guest.checked("grep -c '^ok ' /root/answers || true").trimmingCharacters(
                        in: .whitespacesAndNewlines)) ?? 0
            }
            func waitFor(more: Int) throws -> Bool {
                let target = try answered() + more
                let deadline = Clock.now() + 120
                while Clock.now() < deadline {
                    if try answered() >= target { return true }
                    Clock.sleep(seconds: 0.5)
                }
                return false
            }
            #expect(try waitFor(more: 10), "no answers before the patch")

            let beforeApply = try guest.checked("wc -l < /root/answers").trimmingCharacters(in: .whitespacesAndNewlines)
            let apply = try guest.ssh("suture process apply --pid \(pid) /root/fix.patch.o --timeout 60 --json")
            try #require(apply.termination == .exited(0), "apply: \(apply.stdoutText)\(apply.stderrText)")
            print("TinyproxyGuestTests: apply \(try JSON.parse(apply.stdoutText).serialized())")
            #expect(try waitFor(more: 10), "no answers after apply")
            let status = try JSON.parse(try guest.checked("suture process status --pid \(pid) --json"))
            #expect(status["patches"]?.arrayValue?.count == 1, "\(status.serialized())")
            // The request CVE-2023-49606 is about, a Connection header naming
            // itself, answered whole by the patched proxy.
            let named = try guest.ssh("python3 /root/client.py 'Connection, Proxy-Connection'")
            #expect(named.termination == .exited(0), "\(named.stdoutText)\(named.stderrText)")

            let beforeRevert = try guest.checked("wc -l < /root/answers").trimmingCharacters(
                in: .whitespacesAndNewlines)
            let revert = try guest.ssh("suture process revert --pid \(pid) --timeout 60 --json")
            try #require(revert.termination == .exited(0), "revert: \(revert.stdoutText)\(revert.stderrText)")
            #expect(try waitFor(more: 10), "no answers after revert")
            try guest.checked("touch /root/stop; for i in $(seq 150); do [ -e /root/done ] && break; sleep 0.2; done")

            let failures = try guest.checked("grep -v '^ok ' /root/answers || true")
            let log = try guest.checked(
                "grep -v CONNECT /var/log/tinyproxy/tinyproxy.log | grep -iv 'Request (file' | tail -20 || true")
            #expect(
                failures.isEmpty,
                "the client saw errors (apply at request \(beforeApply), revert at \(beforeRevert)): \(failures.prefix(500))\n\(log)"
            )
            #expect(try guest.checked("systemctl show -p MainPID --value tinyproxy.service") == "\(pid)\n")
            print(
                "TinyproxyGuestTests: \(try answered()) answers, booted in \(guest.bootSeconds) s, \(Int(Clock.now() - started)) s with the guest"
            )
        }
    }
}
