#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Fuzzes the object diff (two objects in, refusal or patch out) with
# libFuzzer for a bounded time and prints the number of executions and
# crashes. Extra libFuzzer flags come from FUZZ_ARGS (e.g. "-jobs=1 -workers=1").
#   Benchmarks/fuzz-diff.sh [SECONDS]   (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
scratch=.build-fuzz
swift build -c release --scratch-path "$scratch" --product DiffFuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING >&2
corpus=$(mktemp -d /tmp/suture-fuzz-diff-corpus.XXXXXX)
artifacts=$(mktemp -d /tmp/suture-fuzz-diff-artifacts.XXXXXX)
work=$(mktemp -d /tmp/suture-fuzz-diff-work.XXXXXX)
trap 'rm -rf "$corpus" "$work"' EXIT
# Seeds: each user-space fixture compiled before and after its diff, and
# small kernel-style objects (fentry calls) with a change between them,
# packed as [rules][u32 length][original][patched].
pack() { # RULES ORIGINAL PATCHED OUT
    python3 - "$@" <<'PY'
import struct, sys
rules, a, b, out = sys.argv[1:]
x, y = open(a, "rb").read(), open(b, "rb").read()
open(out, "wb").write(bytes([int(rules)]) + struct.pack("<I", len(x)) + x + y)
PY
}
fixtures=Tests/PatchCoreTests/Fixtures/user
for fixture in "$fixtures"/*/; do
    name=$(basename "$fixture")
    source=$(cd "$fixture" && ls orig.* | head -1)
    ext=${source#orig.}
    compiler=gcc; [ "$ext" = cpp ] && compiler=g++
    mkdir -p "$work/$name/o" "$work/$name/p"
    cp "$fixture/$source" "$work/$name/o/fixture.$ext"
    cp "$fixture/$source" "$work/$name/p/fixture.$ext"
    patch -s -p1 -d "$work/$name/p" < "$fixture/patch.diff" || continue
    for side in o p; do
        (cd "$work/$name/$side" && $compiler -O2 -c -ffunction-sections -fdata-sections -o fixture.o "fixture.$ext") || continue 2
    done
    pack 1 "$work/$name/o/fixture.o" "$work/$name/p/fixture.o" "$corpus/$name"
done
for v in 1 2; do
    printf 'static int helper(int x){return x*%d;}\nint f(int x){return helper(x)+1;}\nint g = 3;\n' "$v" \
        | gcc -O2 -c -x c -pg -mfentry -mrecord-mcount -ffunction-sections -fdata-sections -o "$work/kernel$v.o" -
done
pack 0 "$work/kernel1.o" "$work/kernel2.o" "$corpus/kernel"
log=$(mktemp)
started=$SECONDS
# shellcheck disable=SC2086
SWIFT_BACKTRACE=enable=no "$scratch/release/DiffFuzz" "$corpus" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} 2>"$log" || true
# With -jobs, libFuzzer's worker writes fuzz-JOB.log in the current folder
# (and the parent repeats it): keep it, count each worker's figure once.
for job in fuzz-*.log; do if [ -f "$job" ]; then cat "$job" >>"$log"; rm -f "$job"; fi; done
runs=$(grep -E '^stat::number_of_executed_units' "$log" | sort -u | awk '{s+=$2} END {print s+0}')
grep -E '^Done [0-9]+ runs' "$log" | sort -u >&2 || true
crashes=$(find "$artifacts" -type f | wc -l)
echo "fuzz-diff: ${seconds}s asked, $((SECONDS - started))s run, executions=${runs:-0}, crashes=${crashes}, artifacts in $artifacts"
tail -3 "$log" >&2
[ "$crashes" -eq 0 ]
