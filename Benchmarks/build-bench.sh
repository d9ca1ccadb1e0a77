#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# `suture build` of a one-file patch with the tree cached: the phase
# breakdown, total wall time, and Suture's own processing (everything but
# gcc, kbuild and patch). Run twice: the first build also compiles the
# original object, the second finds it cached.
# Goals: <= 30 s wall on 2 cores, of which Suture's own processing <= 2 s.
#   Benchmarks/build-bench.sh [DIFF]   (default: the /proc/loadavg fixture)
set -euo pipefail
cd "$(dirname "$0")/.."
suture=${SUTURE_BINARY:-.build/release/suture}
[ -x "$suture" ] || swift build -c release >&2
diff=${1:-Tests/Fixtures/kernel/proc-string/patch.diff}
out=$(mktemp -d /tmp/suture-build-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$suture" kernel prepare >&2
"$suture" vm --kallsyms > /dev/null
cache=${SUTURE_CACHE:-/var/cache/suture}
for run in cold warm; do
    if [ "$run" = cold ]; then rm -rf "$cache"/objects; fi
    start=$(date +%s.%N)
    "$suture" build --json -o "$out" "$diff" > "$out/report.json"
    end=$(date +%s.%N)
    printf '%s: wall %.1f s; ' "$run" "$(echo "$end - $start" | bc)"
    jq -r '"phases: " + ([.phases | to_entries[] | "\(.key) \(.value)s"] | join(", ")) + "; suture own processing \(.ownSeconds) s"' "$out/report.json"
done
