#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# `suture diff` on the largest object of the kernel tree, kernel/sched/core.o:
# unchanged, and with a one-line change. Prints the median time of several
# runs and the peak memory against the input size.
# Goals: <= 200 ms, memory <= 10x the input.
#   Benchmarks/diff-bench.sh [RUNS]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
suture=${SUTURE_BINARY:-.build/release/suture}
[ -x "$suture" ] || swift build -c release >&2
work=$(mktemp -d /tmp/suture-diff-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$suture" kernel prepare >&2
tree=$("$suture" kernel prepare --json | jq -r .tree)
mkdir -p "$work/src/kernel/sched" "$work/a" "$work/b"
cp "$tree/source/kernel/sched/core.c" "$work/src/kernel/sched/core.c"
chmod u+w "$work/src/kernel/sched/core.c"
# One line: sched_getscheduler(2) returns ESRCH instead of EINVAL for pid -1.
python3 - "$work/src/kernel/sched/core.c" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
old = "SYSCALL_DEFINE1(sched_getscheduler, pid_t, pid)\n{\n\tstruct task_struct *p;\n\tint retval;\n\n\tif (pid < 0)"
assert s.count(old) == 1, "the sched_getscheduler anchor is missing"
open(p, "w").write(s.replace(old, old.replace("pid < 0", "pid < -1")))
PY
"$suture" kernel compile kernel/sched/core.o --output "$work/a" >&2
"$suture" kernel compile kernel/sched/core.o --replace kernel/sched/core.c="$work/src/kernel/sched/core.c" --output "$work/b" >&2
a=$work/a/kernel/sched/core.o; b=$work/b/kernel/sched/core.o
size=$(( $(stat -c %s "$a") + $(stat -c %s "$b") ))

measure() { # label original patched
    local times=() rss=0
    for _ in $(seq "$runs"); do
        /usr/bin/time -f '%e %M' -o "$work/t" "$suture" diff "$2" "$3" -o "$work/out.o" > /dev/null 2>&1 || true
        read -r t m < "$work/t"
        times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%-10s median %4.0f ms, peak RSS %5.1f MB = %4.1fx the input (%.1f MB)\n' "$1" "$(echo "$median * 1000" | bc)" \
        "$(echo "$rss / 1024" | bc -l)" "$(echo "$rss * 1024 / $size" | bc -l)" "$(echo "$size / 1048576" | bc -l)"
}
echo "kernel/sched/core.o: $(readelf -SW "$a" | grep -c '^  \[') sections, $(readelf -sW "$a" | wc -l) symbols" >&2
measure unchanged "$a" "$a"
measure one-line "$a" "$b"
"$suture" diff "$a" "$b" | grep -E '^  (changed|new)' >&2 || true
