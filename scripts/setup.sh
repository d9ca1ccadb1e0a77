#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Installs what Suture needs and is missing, then builds it in release mode.
# Idempotent; safe to run again. Needs root for apt (uses sudo when not root).
#   scripts/setup.sh            tools, VM tools, the matched kernel set, build
#   scripts/setup.sh --tests    also what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=0
[ "${1:-}" = "--tests" ] && with_tests=1

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

updated=0
apt_install() {
    local missing=()
    for p in "$@"; do
        installed "${p%%=*}" && { [[ "$p" != *=* ]] || [ "$(dpkg-query -W -f='${Version}' "${p%%=*}")" = "${p#*=}" ]; } || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ $updated -eq 0 ]; then
        say "apt-get update"
        as_root apt-get update -qq
        updated=1
    fi
    say "installing ${missing[*]}"
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Build tools, VM tools.
# dwarves (pahole): olddefconfig derives the BTF options from its version.
apt_install make gcc g++ libc6-dev patch xz-utils zstd binutils flex bison bc libelf-dev libssl-dev dwarves \
    qemu-system-x86 busybox-static cpio kmod
# Build roots for kernels of other Debian releases (trixie's gcc-14, sid's gcc-16):
# mmdebstrap makes them; debian-archive-keyring checks the archive's signatures.
apt_install mmdebstrap debian-archive-keyring
# Debian guests (`suture vm --image debian`): qemu-img makes each guest's
# copy-on-write overlay, mkfs.ext4 its cached disks, ssh reaches it.
apt_install qemu-utils e2fsprogs openssh-client

# Secure Boot: UEFI firmware (ovmf), openssl for keys, osslsigncode to read the
# kernel image's own Authenticode signer, and virt-fw-vars (python3-virt-firmware,
# only in the release's backports suite) to write the firmware's variables.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
if ! grep -rqsE "(^|[[:space:]])${codename}-backports([[:space:]]|$)" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "adding ${codename}-backports to apt's sources"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$codename" | as_root tee /etc/apt/sources.list.d/suture-backports.sources >/dev/null
    updated=0
fi
apt_install ovmf openssl osslsigncode
if ! installed python3-virt-firmware; then
    [ $updated -eq 1 ] || { as_root apt-get update -qq; updated=1; }
    say "installing python3-virt-firmware from ${codename}-backports"
    as_root apt-get install -y -qq --no-install-recommends -t "${codename}-backports" python3-virt-firmware >/dev/null
fi

# The kernel as one matched set: the image the metapackage points at, its
# headers, and linux-source of exactly the same package version.
apt_install linux-image-amd64
image=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | tr ',|' '\n\n' | grep -o 'linux-image-[^ ]*' | head -1)
release=${image#linux-image-}
version=$(dpkg-query -W -f='${Version}' "$image")
series=$(echo "$release" | cut -d. -f1,2)
say "target kernel $release (package $version)"
apt_install "linux-headers-$release=$version" "linux-source-$series=$version"

if [ $with_tests -eq 1 ]; then
    # systemd-analyze for the boot unit's test; an older kernel image for
    # the target-kernels tests (source fetched by version).
    apt_install systemd
    # Building and checking the Debian packages (scripts/check-package.sh).
    apt_install debhelper dpkg-dev git lintian man-db
    # tinyproxy's build-deps: the real package TinyproxyGuestTests builds.
    apt_install asciidoc xmlto
    # jq for Benchmarks/corpus.sh (CorpusSliceTests).
    apt_install jq
    # Build systems that process build follows (BuildSystemTests).
    apt_install cmake ninja-build meson ccache libtool libtool-bin
    # ansible-playbook for the collection in ansible/ (FleetTests).
    apt_install ansible-core
    if [ -x scripts/install-older-kernel.sh ]; then bash scripts/install-older-kernel.sh; fi
fi

if ! command -v swift >/dev/null; then
    export PATH=/opt/swift/usr/bin:$PATH
fi
say "building suture (release)"
set +o pipefail
swift build -c release 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]|^Building for|^Compiling|^Write|^Fetching|^Computing|^Computed|^Creating|^Working copy|warning: .*mktemp' >&2
status=${PIPESTATUS[0]}
set -o pipefail
[ "$status" -eq 0 ] || { say "build failed (status $status)"; exit 1; }
say "ready: .build/release/suture"
