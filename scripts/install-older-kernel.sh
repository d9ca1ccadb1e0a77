#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Installs one older Debian kernel image next to the current one, for the
# tests of `suture kernel prepare` that fetch a kernel's source by version.
#
# The current image is the one linux-image-<arch> depends on, such as
# linux-image-6.1.0-57-amd64 (package version 6.1.192-3). The script picks
# the newest linux-image-X.Y.Z-N-<flavour> of the same series whose
# package version is lower, and installs the image only: no headers, no
# recommends, no questions. Running it again changes nothing.
set -eu

meta=${SUTURE_KERNEL_META:-linux-image-amd64}
export DEBIAN_FRONTEND=noninteractive

current=$(dpkg-query -W -f '${Depends}' "$meta" 2>/dev/null | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n 1)
if [ -z "$current" ]; then
    echo "install-older-kernel: $meta is not installed, so there is no current kernel to compare with" >&2
    exit 1
fi
current_version=$(dpkg-query -W -f '${Version}' "$current")

# linux-image-6.1.0-57-amd64 -> prefix linux-image-6.1.0-, flavour -amd64
abi=${current#linux-image-}
series=$(echo "$abi" | sed -n 's/^\([0-9]*\.[0-9]*\.[0-9]*\)-[0-9]*-.*$/\1/p')
flavour=$(echo "$abi" | sed -n 's/^[0-9]*\.[0-9]*\.[0-9]*-[0-9]*-\(.*\)$/\1/p')
if [ -z "$series" ] || [ -z "$flavour" ]; then
    echo "install-older-kernel: cannot read the ABI of $current" >&2
    exit 1
fi
pattern="^linux-image-$(echo "$series" | sed 's/\./\\./g')-[0-9]+-$flavour\$"

best=""
best_version=""
for package in $(apt-cache search --names-only "$pattern" | cut -d' ' -f1); do
    [ "$package" = "$current" ] && continue
    version=$(apt-cache policy "$package" | sed -n 's/^ *Candidate: //p')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then continue; fi
    dpkg --compare-versions "$version" lt "$current_version" || continue
    if [ -z "$best" ] || dpkg --compare-versions "$version" gt "$best_version"; then
        best=$package
        best_version=$version
    fi
done

if [ -z "$best" ]; then
    echo "install-older-kernel: no $series kernel image older than $current ($current_version) in the archive; run apt-get update?" >&2
    exit 1
fi

if [ "$(dpkg-query -W -f '${Status}' "$best" 2>/dev/null || true)" = "install ok installed" ]; then
    echo "install-older-kernel: $best ($best_version) is already installed"
    exit 0
fi

echo "install-older-kernel: installing $best ($best_version), older than $current ($current_version)"
apt-get install -y --no-install-recommends "$best"

# Installing an image points /vmlinuz and /initrd.img at it; point them back
# at the current kernel, which stays the machine's default.
if command -v linux-update-symlinks >/dev/null 2>&1 && [ -e "/boot/vmlinuz-$abi" ]; then
    linux-update-symlinks install "$abi" "/boot/vmlinuz-$abi"
fi
