#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The README's main command: set up what is missing, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
module=$(ls -d /lib/modules/*/kernel | sort -V | tail -1)/fs/binfmt_misc.ko
exec .build/release/suture elf "$module"
