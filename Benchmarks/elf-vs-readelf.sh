#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# `suture elf --json` against `readelf -SsrW` over the same 50 largest .ko
# files of the installed kernel, in one run. Prints both totals (median of
# several rounds) and the ratio. Goal: suture <= 1.0x readelf.
#   Benchmarks/elf-vs-readelf.sh [ROUNDS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
suture=${SUTURE_BINARY:-.build/release/suture}
[ -x "$suture" ] || swift build -c release >&2
modules=$(ls -d /lib/modules/*/kernel | sort -V | tail -1)
mapfile -t files < <(find "$modules" -name '*.ko*' -type f -printf '%s %p\n' | sort -rn | head -50 | awk '{print $2}')
bytes=$(du -cb "${files[@]}" | tail -1 | awk '{print $1}')
echo "files: ${#files[@]} largest modules of $modules, $((bytes / 1000000)) MB" >&2

time_loop() {
    local start end
    start=$(date +%s.%N)
    for f in "${files[@]}"; do "$@" "$f" > /dev/null; done
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

s=(); r=()
for _ in $(seq "$rounds"); do
    s+=("$(time_loop "$suture" elf --json)")
    r+=("$(time_loop readelf -SsrW)")
done
sm=$(printf '%s\n' "${s[@]}" | median)
rm=$(printf '%s\n' "${r[@]}" | median)
printf 'suture elf --json: %.3f s\nreadelf -SsrW:     %.3f s\nratio:             %.2fx\n' "$sm" "$rm" "$(echo "$sm / $rm" | bc -l)"
