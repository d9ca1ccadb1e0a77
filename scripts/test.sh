#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The README's test command: set up what is missing, build, run every test.
set -euo pipefail
# Root is needed (apt, /boot, the shared cache): as a user, run again through sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh --tests
export PATH=/opt/swift/usr/bin:$PATH
status=0
# The Debian packages: built from this tree and checked (man pages, unit, lintian);
# DebianPackageTests then installs these in a Debian guest.
echo "test: bash scripts/check-package.sh" >&2
if bash scripts/check-package.sh; then export SUTURE_TEST_DEBS=$PWD/out/deb; else status=1; fi
echo "test: swift test -c release" >&2
swift test -c release 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Write|Emitting)|warning: .*mktemp'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "test: finished in $(( $(date +%s) - start )) s, status $status" >&2
exit "$status"
