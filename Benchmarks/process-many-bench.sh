#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Speed of `suture process apply` on many processes at once: N copies of one
# program (Tests/ProcessPatchTests/Fixtures/sharedlib: a loop calling into a
# shared library every 20 ms), one library patch applied to all of them with
# repeated --pid (all or none), then reverted; for N = 1, 10 and 50 (or the
# counts given in COUNTS), RUNS rounds each (default 3). Printed per N:
#   - the pause of each process (its committing stop-and-check attempt:
#     first PTRACE_INTERRUPT to last thread resumed), median and maximum;
#   - the time to patch one process (check, attach, map, link, write,
#     switch, detach), median;
#   - the total wall time of the apply and of the revert for all N (with one
#     --pid, the single-process command, whose JSON has no separate check).
# Processes are patched one after another; each is stopped only for its own
# pause, the others run on.
# Usage: Benchmarks/process-many-bench.sh [RUNS]   (after `swift build -c release`, as root
# or as the programs' owner)
set -euo pipefail
cd "$(dirname "$0")/.."
suture=$(realpath "${SUTURE_BINARY:-.build/release/suture}")
runs=${1:-${RUNS:-3}}
counts=${COUNTS:-1 10 50}
[ -x "$suture" ] || { echo "no $suture: run swift build -c release first" >&2; exit 1; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { sort -g | tail -n 1; }

work=$(mktemp -d /tmp/suture-many-bench.XXXXXX)
targets=()
stop_all() { [ ${#targets[@]} -gt 0 ] && kill "${targets[@]}" 2>/dev/null; wait 2>/dev/null || true; targets=(); }
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
cp -r Tests/ProcessPatchTests/Fixtures/sharedlib "$work/src"
"$suture" process build "$work/src/patch.diff" --source "$work/src" --build make --binary libshared.so \
    -o "$work/fix.patch.o" >/dev/null 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }

echo "suture process apply on N processes: $runs round(s) each, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%6s  %16s  %16s  %18s  %14s  %14s\n' N "pause/process µs" "max pause µs" "per process ms" "apply all ms" "revert all ms"
for n in $counts; do
    pauses=() per=() totals=() reverts=()
    for _ in $(seq "$n"); do
        "$work/src/app" >/dev/null &
        targets+=($!)
    done
    sleep 1
    args=()
    for p in "${targets[@]}"; do args+=(--pid "$p"); done
    for _ in $(seq "$runs"); do
        json=$("$suture" process apply "${args[@]}" "$work/fix.patch.o" --timeout 60 --json) || { echo "apply failed: $json" >&2; exit 1; }
        while read -r v; do pauses+=("$v"); done < <(jq -r '(.processes // [.])[].pausesMicroseconds[-1]' <<<"$json")
        while read -r v; do per+=("$v"); done < <(jq -r '(.processes // [.])[].applySeconds * 1000' <<<"$json")
        totals+=("$(jq -r '(.seconds // .applySeconds) * 1000' <<<"$json")")
        sleep 0.5
        json=$("$suture" process revert "${args[@]}" --timeout 60 --json) || { echo "revert failed: $json" >&2; exit 1; }
        reverts+=("$(jq -r '(.seconds // .revertSeconds) * 1000' <<<"$json")")
        sleep 0.5
    done
    stop_all
    printf '%6d  %16.0f  %16.0f  %18.1f  %14.0f  %14.0f\n' "$n" "$(printf '%s\n' "${pauses[@]}" | median)" \
        "$(printf '%s\n' "${pauses[@]}" | maximum)" "$(printf '%s\n' "${per[@]}" | median)" \
        "$(printf '%s\n' "${totals[@]}" | median)" "$(printf '%s\n' "${reverts[@]}" | median)"
done
