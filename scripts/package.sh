#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Builds the Debian packages suture and suture-build (debian/) with
# dpkg-buildpackage and puts them into out/deb. Swift is not a Debian
# package: it is taken from PATH, else /opt/swift/usr/bin. Installs
# debhelper and git when missing (through sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for p in debhelper git dpkg-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
version=$(dpkg-parsechangelog -S Version)
dpkg-buildpackage -b -uc -us
mkdir -p out/deb
for f in ../suture_"$version"_* ../suture-build_"$version"_* ../suture-dbgsym_"$version"_*; do
    [ -e "$f" ] && mv -f "$f" out/deb/
done
ls out/deb
