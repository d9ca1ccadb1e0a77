#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Speed of `suture process`, on a 32-thread program whose patch replaces 10
# functions (Benchmarks/process-bench/), as medians of RUNS apply/revert
# rounds (default 10):
#   - the stop-the-world pause per attempt: from the first PTRACE_INTERRUPT
#     to the last thread resumed, as `apply --json` reports it (goal ≤ 1 ms);
#   - the extra cost of calling a patched function through its entry jump,
#     against the same code never patched, timed by the program itself in the
#     same run (goal ≤ 2 ns); the same difference unpatched is the noise floor;
#   - the total apply time, and how long the one thread borrowed to map the
#     patch area (an injected memfd_create + mmap) was stopped; the other
#     threads run on meanwhile.
# Two kinds of threads: "server" threads rest 1 ms after every 1000 calls;
# "busy" threads never rest (they compute outside the patched functions), so
# on a small machine most of them wait for a CPU, and a stop must wait for
# the scheduler to run each of them once.
# Then, for the per-thread and hybrid models (server threads, same program):
#   - the total time from apply to the end of the transition, per model;
#   - the call overhead through the dispatcher during a per-thread transition
#     (a thread not yet moved: table lookup, then the old code; goal ≤ 20 ns),
#     printed next to the direct-jump figure of the same run. Suture is held
#     in the transition with SUTURE_DEBUG_PAUSE=transition-running.
# Usage: Benchmarks/process-bench.sh [RUNS]   (after `swift build -c release`; as root
# or as the program's owner)
set -euo pipefail
cd "$(dirname "$0")/.."
suture=$(realpath "${SUTURE_BINARY:-.build/release/suture}")
runs=${1:-${RUNS:-10}}
threads=32
[ -x "$suture" ] || { echo "no $suture: run swift build -c release first" >&2; exit 1; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

work=$(mktemp -d /tmp/suture-process-bench.XXXXXX)
target=""
cleanup() { [ -n "$target" ] && kill "$target" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cp -r Benchmarks/process-bench "$work/src"
"$suture" process build "$work/src/bench.diff" --source "$work/src" --build make --binary bench \
    -o "$work/bench.patch.o" >/dev/null 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }

# Probe lines ("probe P plain Q") printed since line $2 of file $1, as P-Q.
overheads() { tail -n +"$(($2 + 1))" "$1" | awk '/^probe/ { printf "%.3f\n", $2 - $4 }'; }

bench() {
    local mode=$1 model=${2:-stop-check} out="$work/$1.out"
    local pauses=() commits=() applies=() preparations=() patched=() unpatched=() stops=() checks=() writes=() resumes=()
    "$work/src/bench" "$threads" "$mode" >"$out" &
    target=$!
    until grep -q '^ready' "$out"; do sleep 0.05; done
    sleep 1
    for _ in $(seq "$runs"); do
        local mark; mark=$(wc -l <"$out")
        sleep 1.5
        while read -r v; do unpatched+=("$v"); done < <(overheads "$out" "$mark" | tail -n +2)
        local json; json=$("$suture" process apply --pid "$target" "$work/bench.patch.o" --model "$model" --timeout 120 --json) || {
            echo "apply failed: $json" >&2; continue; }
        while read -r v; do pauses+=("$v"); done < <(jq -r '.pausesMicroseconds[]' <<<"$json")
        commits+=("$(jq -r '.pausesMicroseconds[-1]' <<<"$json")")
        stops+=("$(jq -r '.commitPauseMicroseconds.stop' <<<"$json")")
        checks+=("$(jq -r '.commitPauseMicroseconds.check' <<<"$json")")
        writes+=("$(jq -r '.commitPauseMicroseconds.commit' <<<"$json")")
        resumes+=("$(jq -r '.commitPauseMicroseconds.resume' <<<"$json")")
        applies+=("$(jq -r '.applySeconds * 1000' <<<"$json")")
        preparations+=("$(jq -r '.preparationPauseMicroseconds' <<<"$json")")
        mark=$(wc -l <"$out")
        sleep 1.5
        # The first line after the apply may straddle it.
        while read -r v; do patched+=("$v"); done < <(overheads "$out" "$mark" | tail -n +2)
        "$suture" process revert --pid "$target" --timeout 120 >/dev/null || { echo "revert failed" >&2; break; }
    done
    kill "$target"; wait "$target" 2>/dev/null || true; target=""
    printf '%s threads (%d, "%s"), model %s:\n' "$mode" "$threads" "$mode" "$model"
    if [ "$model" = stop-check ]; then
        printf '  pause per attempt, median        %8.0f µs   (%d attempts)\n' "$(printf '%s\n' "${pauses[@]}" | median)" "${#pauses[@]}"
        printf '  pause of the committing attempt  %8.0f µs   (stop %.0f, check %.0f, commit %.0f, resume %.0f)\n' \
            "$(printf '%s\n' "${commits[@]}" | median)" "$(printf '%s\n' "${stops[@]}" | median)" \
            "$(printf '%s\n' "${checks[@]}" | median)" "$(printf '%s\n' "${writes[@]}" | median)" "$(printf '%s\n' "${resumes[@]}" | median)"
    else
        # Two world stops per transition: the beginning and the end; threads
        # move one by one in between, each stopped alone.
        printf '  world stop (begin, end), median  %8.0f µs   (%d stops)\n' "$(printf '%s\n' "${pauses[@]}" | median)" "${#pauses[@]}"
    fi
    printf '  one thread stopped for the mmap  %8.0f µs\n' "$(printf '%s\n' "${preparations[@]}" | median)"
    printf '  total apply time (to completion) %8.1f ms\n' "$(printf '%s\n' "${applies[@]}" | median)"
    printf '  call overhead, patched − plain   %8.3f ns   (%d samples)\n' "$(printf '%s\n' "${patched[@]}" | median)" "${#patched[@]}"
    printf '  same difference, unpatched       %8.3f ns   (noise floor, %d samples)\n' "$(printf '%s\n' "${unpatched[@]}" | median)" "${#unpatched[@]}"
}

# The dispatcher during a transition: apply per-thread, held right after the
# transition began (every thread marked old), then interrupted (the
# transition stays in the target) and reverted.
dispatcher() {
    local out="$work/dispatcher.out" err="$work/dispatcher.err" through=() direct=()
    "$work/src/bench" "$threads" server >"$out" &
    target=$!
    until grep -q '^ready' "$out"; do sleep 0.05; done
    sleep 1
    for _ in $(seq "$runs"); do
        "$suture" process apply --pid "$target" "$work/bench.patch.o" --model stop-check --timeout 120 >/dev/null
        local mark; mark=$(wc -l <"$out"); sleep 1.5
        while read -r v; do direct+=("$v"); done < <(overheads "$out" "$mark" | tail -n +2)
        "$suture" process revert --pid "$target" --timeout 120 >/dev/null
        SUTURE_DEBUG_PAUSE=transition-running "$suture" process apply --pid "$target" "$work/bench.patch.o" \
            --model per-thread --timeout 120 >/dev/null 2>"$err" &
        local applier=$!
        until grep -q 'debug pause at transition-running' "$err"; do sleep 0.02; done
        mark=$(wc -l <"$out"); sleep 1.5
        while read -r v; do through+=("$v"); done < <(overheads "$out" "$mark" | tail -n +2)
        kill -TERM "$applier"; wait "$applier" 2>/dev/null || true
        "$suture" process revert --pid "$target" --timeout 120 >/dev/null || { echo "revert failed" >&2; break; }
    done
    kill "$target"; wait "$target" 2>/dev/null || true; target=""
    printf 'call overhead, patched − plain (server threads, same run):\n'
    printf '  through the entry jump (applied)       %8.3f ns   (%d samples)\n' "$(printf '%s\n' "${direct[@]}" | median)" "${#direct[@]}"
    printf '  through the dispatcher (in transition) %8.3f ns   (%d samples)\n' "$(printf '%s\n' "${through[@]}" | median)" "${#through[@]}"
}

echo "suture process benchmark: medians of $runs apply/revert rounds, 10 functions, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
case "${BENCH:-all}" in
    stop-check) bench server; bench busy ;;
    models) bench server per-thread; bench server hybrid; dispatcher ;;
    *) bench server; bench busy; bench server per-thread; bench server hybrid; dispatcher ;;
esac
