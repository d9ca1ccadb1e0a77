#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Build roots: the first-time root (wall time and bytes downloaded), its
# reuse (goal <= 1 s), and a one-file patch built in a root against the
# same patch built on the host, measured in one run.
#   Benchmarks/buildroot-bench.sh [ROOT-KERNEL] [HOST-KERNEL]
# Defaults: 6.12.117+deb13-amd64 (trixie, gcc-14, in a root) and
# 6.12.118+deb12-amd64 (Debian 12's 6.12 line, gcc-12, the host's): the same
# source series, so the ratio is the root's cost. The first-time root is made
# in a scratch cache (the kernels are linked from the real one), so the real
# cache's root is left alone; the bytes are what the network interfaces
# received meanwhile (other traffic on the machine counts too).
set -euo pipefail
cd "$(dirname "$0")/.."
suture=${SUTURE_BINARY:-.build/release/suture}
[ -x "$suture" ] || swift build -c release >&2
rooted=${1:-6.12.117+deb13-amd64}
hosted=${2:-6.12.118+deb12-amd64}
diff=Tests/Fixtures/kernel/proc-string/patch.diff
cache=${SUTURE_CACHE:-/var/cache/suture}
scratch=$(mktemp -d /tmp/suture-root-bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
now() { date +%s.%N; }
received() { awk -F"[: ]+" 'NR > 2 && $2 != "lo" { sum += $3 } END { printf "%.0f\n", sum }' /proc/net/dev; }

"$suture" kernel fetch "$rooted" >&2
"$suture" kernel fetch "$hosted" >&2

# 1. First-time root, in a scratch cache.
mkdir -p "$scratch/cache/kernels"
ln -s "$cache/kernels/$rooted" "$scratch/cache/kernels/$rooted"
rx0=$(received); t0=$(now)
SUTURE_CACHE="$scratch/cache" "$suture" kernel root --kernel "$rooted" --json > "$scratch/first.json"
t1=$(now); rx1=$(received)
printf 'first-time root: %.1f s wall, %.1f MB received; %s\n' "$(echo "$t1 - $t0" | bc)" \
    "$(echo "($rx1 - $rx0) / 1048576" | bc -l)" "$(jq -r '.compiler' "$scratch/first.json")"
printf 'root size on disk: %s\n' "$(du -sh "$scratch/cache/roots" | cut -f1)"

# 2. Reuse: the root alone, and a whole prepare that finds tree and root ready.
"$suture" kernel prepare --kernel "$rooted" > /dev/null 2>&1
for what in "kernel root" "kernel prepare"; do
    t0=$(now)
    # shellcheck disable=SC2086
    "$suture" $what --kernel "$rooted" > /dev/null
    t1=$(now)
    printf 'reuse (%s): %.2f s\n' "$what" "$(echo "$t1 - $t0" | bc)"
done

# 3. One-file patch: in the root against on the host (trees, kallsyms and original objects warm).
"$suture" kernel prepare --kernel "$hosted" > /dev/null 2>&1
declare -A wall
for kernel in "$rooted" "$hosted"; do
    "$suture" build --json -o "$scratch" --kernel "$kernel" "$diff" > /dev/null  # warm-up: kallsyms, originals
    t0=$(now)
    "$suture" build --json -o "$scratch" --kernel "$kernel" "$diff" > "$scratch/build.json"
    t1=$(now)
    wall[$kernel]=$(echo "$t1 - $t0" | bc)
    printf '%s: %.1f s wall; %s\n' "$kernel" "${wall[$kernel]}" \
        "$(jq -r '"phases: " + ([.phases | to_entries[] | "\(.key) \(.value)s"] | join(", "))' "$scratch/build.json")"
done
printf 'root / host: %.2f\n' "$(echo "${wall[$rooted]} / ${wall[$hosted]}" | bc -l)"
