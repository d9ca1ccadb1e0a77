#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Speed of `suture vm`, as medians of RUNS runs (default 5):
#   - boot to first command: from starting `suture vm` until the guest
#     command's first output line reaches the host;
#   - wall time of `suture vm -- true` (goal: at most 10 s with TCG on 2 cores);
#   - bootSeconds as `--json` reports it (initramfs build to agent ready);
#   - the initramfs size, as the guest kernel reports freeing it;
#   - the time of `suture --help` inside the guest.
# Usage: Benchmarks/vm-bench.sh [RUNS]   (after `swift build -c release`)
set -euo pipefail
cd "$(dirname "$0")/.."
suture=${SUTURE_BINARY:-.build/release/suture}
runs=${1:-${RUNS:-5}}
[ -x "$suture" ] || { echo "no $suture: run swift build -c release first" >&2; exit 1; }

now() { date +%s%N; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f\n", ns / 1e9 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One warm-up run fills the caches (extracted vmlinux, KVM probe), as
# every run after the first one on a machine finds them.
"$suture" vm -- true

first=() wall=() boot=()
for _ in $(seq "$runs"); do
    start=$(now)
    arrived=$("$suture" vm -- 'echo first' | { read -r _; now; cat >/dev/null; })
    first+=("$(seconds $((arrived - start)))")

    start=$(now)
    json=$("$suture" vm --json -- true)
    end=$(now)
    wall+=("$(seconds $((end - start)))")
    boot+=("$(printf '%s' "$json" | jq -r .bootSeconds)")
done

initrd=$("$suture" vm -- "dmesg | sed -n 's/.*Freeing initrd memory: \([0-9]*\)K.*/\1/p'")
help=$("$suture" vm -- "for i in \$(seq $runs); do time -p suture --help >/dev/null; done" 2>&1 >/dev/null \
    | awk '/^real/ { print $2 }' | median)
accel=$(cat "${SUTURE_CACHE:-/var/cache/suture}/vm/accelerator" 2>/dev/null | tail -n 1 || echo "?")

echo "suture vm benchmark: medians of $runs runs, accelerator ${accel:-?}, $(nproc) cores"
printf '  boot to first command output     %6.2f s\n' "$(printf '%s\n' "${first[@]}" | median)"
printf '  wall time of suture vm -- true   %6.2f s\n' "$(printf '%s\n' "${wall[@]}" | median)"
printf '  bootSeconds (--json)             %6.2f s\n' "$(printf '%s\n' "${boot[@]}" | median)"
printf '  initramfs size                   %6.1f MB\n' "$(awk -v k="$initrd" 'BEGIN { print k / 1024 }')"
printf '  suture --help inside the guest   %6.3f s\n' "$help"
