#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The README's main command: set up what is missing, build Suture, and run
# `suture demo`: a live patch built from a diff for the Debian kernel, tried
# in a throwaway VM of that kernel.
set -euo pipefail
# Root is needed (apt, /boot, the shared cache): as a user, run again through sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .build/release/suture demo "$@"
