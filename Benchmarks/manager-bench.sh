#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Speed of Suture's live-patch manager in a guest of the target kernel
# (`suture vm`), as medians of RUNS runs (default 7):
#   - `suture load test_klp_livepatch.ko` (until the transition is over)
#     against `insmod` plus polling `transition` every 20 ms until it reads
#     0, the same poll interval Suture uses; goal: overhead <= 100 ms;
#   - `suture list` with 5 patches loaded, start-up included; goal <= 150 ms
#     under TCG.
# The kernel's test modules are built from the target's source tarball
# against its headers, like the integration tests do.
# Usage: Benchmarks/manager-bench.sh [RUNS]   (after `swift build -c release`)
set -euo pipefail
cd "$(dirname "$0")/.."
suture=${SUTURE_BINARY:-.build/release/suture}
runs=${1:-${RUNS:-7}}
[ -x "$suture" ] || { echo "no $suture: run swift build -c release first" >&2; exit 1; }

# The default target kernel, as every suture command resolves it.
kernels=$("$suture" kernel list --json)
target=$(printf '%s' "$kernels" | jq -r .default)
headers=$(printf '%s' "$kernels" | jq -r --arg t "$target" '.kernels[] | select(.release == $t) | .headers')
tarball=$(printf '%s' "$kernels" | jq -r --arg t "$target" '.kernels[] | select(.release == $t) | .sourceTarball')
[ "$headers" != null ] && [ "$tarball" != null ] || { echo "the target $target needs its headers and source tarball" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/suture-manager-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "building test modules for $target from $tarball" >&2
tar -xJf "$tarball" -C "$work" --wildcards '*/lib/livepatch/test_klp_livepatch.c'
mkdir "$work/klp"
cp "$work"/*/lib/livepatch/test_klp_livepatch.c "$work/klp/"
# Four more patches for `list`: copies under other module names, stacked.
for i in 1 2 3 4; do cp "$work/klp/test_klp_livepatch.c" "$work/klp/bench_klp_$i.c"; done
echo "obj-m := test_klp_livepatch.o bench_klp_1.o bench_klp_2.o bench_klp_3.o bench_klp_4.o" > "$work/klp/Kbuild"
make -s -C "$headers" M="$work/klp" -j2 modules >/dev/null 2>&1
gcc -static -O2 -o "$work/klp/elapsed" Benchmarks/manager-elapsed.c

cat > "$work/klp/bench.sh" <<'GUEST'
set -eu
cd /tmp/klp
runs=$1
sys=/sys/kernel/livepatch/test_klp_livepatch
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# insmod, then poll `transition` with the shell's own read, every 20 ms.
cat > insmod-wait.sh <<'EOF2'
insmod /tmp/klp/test_klp_livepatch.ko
while read -r t < /sys/kernel/livepatch/test_klp_livepatch/transition && [ "$t" != 0 ]; do usleep 20000; done
EOF2
suture load test_klp_livepatch.ko >/dev/null 2>&1 && suture unload test_klp_livepatch >/dev/null 2>&1   # warm-up
: > insmod.txt; : > suture.txt
for i in $(seq "$runs"); do
    ./elapsed sh insmod-wait.sh >> insmod.txt
    echo 0 > $sys/enabled; while [ -e $sys ]; do usleep 20000; done; rmmod test_klp_livepatch
    ./elapsed sh -c 'suture load test_klp_livepatch.ko >/dev/null 2>&1' >> suture.txt
    suture unload test_klp_livepatch >/dev/null 2>&1
done
suture load test_klp_livepatch.ko >/dev/null 2>&1
for i in 1 2 3 4; do suture load bench_klp_$i.ko >/dev/null 2>&1; done
[ "$(suture list --json | grep -o '"state":"enabled"' | wc -l)" = 5 ] || { echo "not 5 patches" >&2; exit 1; }
: > list.txt
for i in $(seq "$runs"); do ./elapsed sh -c 'suture list >/dev/null' >> list.txt; done
./elapsed sh -c true > sh.txt
suture unload --all >/dev/null 2>&1
echo "insmod $(median < insmod.txt)"
echo "suture $(median < suture.txt)"
echo "list $(median < list.txt)"
echo "sh $(cat sh.txt)"
GUEST

out=$("$suture" vm --add "$work/klp:/tmp/klp" -- sh /tmp/klp/bench.sh "$runs")
value() { printf '%s\n' "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }
insmod=$(value insmod) load=$(value suture) list=$(value list)
echo "suture manager benchmark in a $target guest: medians of $runs runs"
printf '  insmod + poll transition (20 ms)     %5s ms\n' "$(ms "$insmod")"
printf '  suture load                          %5s ms\n' "$(ms "$load")"
printf '  overhead of suture load              %5s ms   (goal <= 100)\n' "$(ms "$(awk -v a="$load" -v b="$insmod" 'BEGIN { print a - b }')")"
printf '  suture list, 5 patches loaded        %5s ms   (goal <= 150)\n' "$(ms "$list")"
