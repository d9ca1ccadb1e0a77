#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Builds the Debian packages (scripts/package.sh; --no-build checks those in
# out/deb) and checks them: the packaged binary runs and names this commit,
# the unit runs /usr/bin/suture and is neither enabled nor started, the man
# pages and completions are there and readable, suture-build pulls in the
# build tools, and lintian reports no error or warning (debian/*.lintian-overrides
# justify what remains). Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--no-build" ] || bash scripts/package.sh >&2
fail() { echo "check-package: $*" >&2; exit 1; }
version=$(dpkg-parsechangelog -S Version)
deb=out/deb/suture_${version}_amd64.deb
build=out/deb/suture-build_${version}_all.deb
[ -f "$deb" ] && [ -f "$build" ] || fail "no $deb or $build"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root/fs"
dpkg-deb -e "$deb" "$root/control"

expected="suture ${version%-*} (commit $(git -c safe.directory="$PWD" rev-parse --short=12 HEAD)"
out=$("$root/fs/usr/bin/suture" --version)
[[ "$out" == "$expected"* ]] || fail "suture --version says '$out', expected '$expected…'"

unit=$root/fs/lib/systemd/system/suture.service
grep -qx 'ExecStart=/usr/bin/suture load --all' "$unit" || fail "the unit does not run /usr/bin/suture"
grep -qx 'EnvironmentFile=-/etc/default/suture' "$unit" || fail "the unit does not read /etc/default/suture"
grep -q '^#SUTURE_STORE=' "$root/fs/etc/default/suture" || fail "/etc/default/suture does not name SUTURE_STORE"
[ ! -e "$root/fs/etc/systemd" ] || fail "the package ships an enabled unit"
if grep -Eq 'deb-systemd-invoke|systemctl (start|restart)' "$root/control/postinst"; then
    fail "the postinst starts the unit"
fi
# Enabled only where it was enabled before (an upgrade): one enable, under was-enabled.
enables=$(grep -c 'deb-systemd-helper enable' "$root/control/postinst" || true)
guarded=$(grep -c 'deb-systemd-helper --quiet was-enabled' "$root/control/postinst" || true)
[ "$enables" -le "$guarded" ] || fail "the postinst enables the unit"

for page in suture suture.build suture.info suture.uname suture.load suture.install suture.vm suture.process.apply; do
    file=$root/fs/usr/share/man/man1/$page.1.gz
    [ -s "$file" ] || fail "no man page $page"
    lexgrog "$file" | grep -q "\"$page - " || fail "man page $page has no whatis entry"
done
man -l "$root/fs/usr/share/man/man1/suture.build.1.gz" 2>/dev/null | grep -q -- '--description TEXT' ||
    fail "the suture build page lacks --description"
bash_completion=$root/fs/usr/share/bash-completion/completions/suture
grep -q 'ko.zst' "$bash_completion" || fail "bash completion offers no module files"
grep -q -- '---completion unload' "$bash_completion" || fail "bash completion offers no patch names"
bash -n "$bash_completion" || fail "bash completion does not parse"
[ -s "$root/fs/usr/share/zsh/vendor-completions/_suture" ] || fail "no zsh completion"
[ -s "$root/fs/usr/share/fish/vendor_completions.d/suture.fish" ] || fail "no fish completion"

depends=$(dpkg-deb -f "$build" Depends)
for wanted in "suture (>= $version)" qemu-system-x86 gcc busybox-static libelf-dev; do
    [[ "$depends" == *"$wanted"* ]] || fail "suture-build does not depend on $wanted"
done

if command -v lintian >/dev/null; then
    lintian --fail-on error,warning "out/deb/suture_${version}_amd64.changes" 2>&1 |
        grep -v 'running with root privileges' >&2 || true
    lintian --fail-on error,warning "out/deb/suture_${version}_amd64.changes" >/dev/null 2>&1 ||
        fail "lintian reports errors or warnings"
fi
echo "check-package: $deb and $build are fine" >&2
