#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Fuzzes the ELF reader with libFuzzer for a bounded time and prints the
# number of executions and crashes. Extra libFuzzer flags come from FUZZ_ARGS
# (e.g. "-jobs=1 -workers=1").
#   Benchmarks/fuzz-elf.sh [SECONDS]   (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
scratch=.build-fuzz
swift build -c release --scratch-path "$scratch" --product ELFFuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING >&2
corpus=$(mktemp -d /tmp/suture-fuzz-corpus.XXXXXX)
artifacts=$(mktemp -d /tmp/suture-fuzz-artifacts.XXXXXX)
trap 'rm -rf "$corpus"' EXIT
# Seeds: small kernel modules and objects compiled here.
mapfile -t seeds < <(find /lib/modules -name '*.ko' -size -24k 2>/dev/null | sort | head -40 || true)
for f in "${seeds[@]}"; do cp "$f" "$corpus/"; done
printf 'int f(int x){return x+1;}\nint g;\n' | gcc -c -x c -ffunction-sections -o "$corpus/seed.o" -
log=$(mktemp)
started=$SECONDS
# shellcheck disable=SC2086
SWIFT_BACKTRACE=enable=no "$scratch/release/ELFFuzz" "$corpus" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} 2>"$log" || true
# With -jobs, libFuzzer's worker writes fuzz-JOB.log in the current folder
# (and the parent repeats it): keep it, count each worker's figure once.
for job in fuzz-*.log; do if [ -f "$job" ]; then cat "$job" >>"$log"; rm -f "$job"; fi; done
runs=$(grep -E '^stat::number_of_executed_units' "$log" | sort -u | awk '{s+=$2} END {print s+0}')
grep -E '^Done [0-9]+ runs' "$log" | sort -u >&2 || true
crashes=$(find "$artifacts" -type f | wc -l)
echo "fuzz-elf: ${seconds}s asked, $((SECONDS - started))s run, executions=${runs:-0}, crashes=${crashes}, artifacts in $artifacts"
tail -3 "$log" >&2
[ "$crashes" -eq 0 ]
