#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Installed patches at boot: N stacked patches (the /proc/loadavg fixture
# built N times under different names, without atomic replace) are
# installed on the host for the target kernel, which is not running there
# (checked and stored, not loaded). A guest of the target boots with that
# store as /var/lib/suture and runs `suture load --all` (what the boot unit
# runs), then `suture list --installed`, then uninstalls and installs them
# one by one (each install loads its patch).
# Goals: `suture load --all` <= 1 s per patch in the TCG guest; install on
# the host <= 0.1 s per patch.
#   Benchmarks/persistence-bench.sh [N]   (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."
suture=$(realpath "${SUTURE_BINARY:-.build/release/suture}")
[ -x "$suture" ] || swift build -c release >&2
count=${1:-4}
diff=Tests/Fixtures/kernel/proc-string/patch.diff
work=$(mktemp -d /tmp/suture-persistence-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/modules"
release=$("$suture" kernel list --json | jq -r .default)

for i in $(seq 1 "$count"); do
    "$suture" build --no-replace --name "bench_$i" -o "$work/modules" "$diff" > /dev/null 2>&1
done

start=$(date +%s.%N)
for i in $(seq 1 "$count"); do
    SUTURE_STORE="$work/store" "$suture" install --kernel "$release" "$work/modules/livepatch-bench_$i.ko" > /dev/null
done
end=$(date +%s.%N)
printf 'host: install of %d patches for %s (not running): %.3f s, %.3f s each\n' \
    "$count" "$release" "$(echo "$end - $start" | bc)" "$(echo "($end - $start) / $count" | bc -l)"

script='
echo "suture load --all:"; time sh -c "suture load --all --json > /tmp/all.json 2> /tmp/progress"
echo "per patch (suture load --json seconds): $(grep -o "\"seconds\":[0-9.]*" /tmp/all.json | cut -d: -f2 | tr "\n" " ")"
grep -o "\"failed\":[0-9]*" /tmp/all.json
cat /proc/loadavg
suture list --installed
suture unload --all > /dev/null 2>&1
for f in $(ls /var/lib/suture/*/*.ko); do cp "$f" /root/; done
rm -rf /var/lib/suture
for f in /root/livepatch_bench_*.ko; do
    echo "suture install $f:"; time sh -c "suture install $f > /dev/null 2> /tmp/progress"
done
'
"$suture" vm --add "$work/store:/var/lib/suture" -- "$script" 2>&1 | sed -e 's/^real/  real/' | grep -v -E '^(user|sys)'
