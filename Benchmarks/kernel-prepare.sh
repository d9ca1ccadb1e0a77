#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Times the pristine-tree service of issue 3 and prints the figures:
#   first `suture kernel prepare` into an empty cache  (goal <= 120 s)
#   creating a scratch workspace on the prepared tree   (goal <= 5 s)
#   compiling one object (fs/proc/meminfo.o) in it      (goal <= 5 s)
#   finding the object that compiles kernel/sched/rt.c  (no goal; reported)
#
# Usage: Benchmarks/kernel-prepare.sh [--kernel RELEASE]
# Uses .build/release/suture (run `swift build -c release` first) or
# $SUTURE_BINARY, and a temporary cache that is removed at the end.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
suture=${SUTURE_BINARY:-$here/.build/release/suture}
if [ ! -x "$suture" ]; then
    echo "kernel-prepare: no $suture; run swift build -c release" >&2
    exit 1
fi
cache=$(mktemp -d "${TMPDIR:-/var/tmp}/suture-bench.XXXXXX")
out=$cache/objects
cleanup() { chmod -R u+w "$cache" 2>/dev/null || true; rm -rf "$cache"; }
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{ printf "%.1f", $1 - $2 }'; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

start=$(now)
"$suture" kernel prepare "$@" --cache "$cache" --json > "$cache/prepare.json"
prepare=$(since "$start")
phases=$(sed -n 's/.*"phases":\[\(.*\)\],"warnings".*/\1/p' "$cache/prepare.json" \
    | sed 's/{"name":"\([^"]*\)","seconds":\([0-9.]*\)}/\1 \2 s/g')
echo "first prepare:        $prepare s   (goal 120 s; phases: $phases)"

for run in 1 2 3; do
    "$suture" kernel compile fs/proc/meminfo.o "$@" --cache "$cache" --output "$out" --json > "$cache/compile.json"
    ws=$(field workspaceSeconds < "$cache/compile.json")
    cc=$(field compileSeconds < "$cache/compile.json")
    echo "run $run: workspace     $ws s   (goal 5 s)"
    echo "run $run: one object    $cc s   (goal 5 s; fs/proc/meminfo.o, pristine check included)"
done

start=$(now)
objects=$("$suture" kernel objects kernel/sched/rt.c "$@" --cache "$cache")
echo "object of kernel/sched/rt.c: $objects in $(since "$start") s"
