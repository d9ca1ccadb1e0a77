#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Cost of the run-pre check for a patch of about 10 functions: several
# kernel fixtures in one build (vmlinux functions and the fat and
# binfmt_misc modules), with the tree and original objects cached.
#   - build time: the `verify` phase of `suture build --json` (reading the
#     shipped vmlinux/.ko code, masks, comparison); goal <= 1 s. The
#     vmlinux is extracted from the bzImage once and cached (shared with
#     the guest's PVH boot); its one-time cost is printed separately.
#   - load time: `verifySeconds` of `suture load --json` in a guest of the
#     target (kallsyms, /proc/kcore, comparison), median of RUNS loads;
#     goal <= 100 ms. The guest runs under TCG, slower than hardware.
# Usage: Benchmarks/runpre-bench.sh [RUNS]   (after `swift build -c release`)
set -euo pipefail
cd "$(dirname "$0")/.."
suture=${SUTURE_BINARY:-.build/release/suture}
runs=${1:-${RUNS:-5}}
[ -x "$suture" ] || { echo "no $suture: run swift build -c release first" >&2; exit 1; }
fixtures="proc-string btf-id-counter copy-from-user export-added included-file inline static-data func-existing module-binfmt"
diffs=()
for f in $fixtures; do diffs+=("Tests/Fixtures/kernel/$f/patch.diff"); done
work=$(mktemp -d "${TMPDIR:-/tmp}/suture-runpre-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$suture" kernel prepare >&2
"$suture" vm --kallsyms > /dev/null
# The first build compiles what is not cached yet; the second is measured.
"$suture" build --json --name runpre_bench -o "$work" "${diffs[@]}" > /dev/null
"$suture" build --json --name runpre_bench -o "$work" "${diffs[@]}" > "$work/report.json"
functions=$(jq '.verification.functions | length' "$work/report.json")
verify=$(jq '.phases.verify' "$work/report.json")
replaced=$(jq '[.verification.functions[] | select(.role == "replaced")] | length' "$work/report.json")

# One-time extraction of vmlinux from the bzImage (what a cold cache pays).
image=$("$suture" kernel list --json | jq -r '.default as $d | .kernels[] | select(.release == $d) | .image')
payload=$(python3 - "$image" <<'PY'
import sys, time, subprocess, struct
data = open(sys.argv[1], "rb").read()
setup = data[0x1f1] or 4
off = (setup + 1) * 512 + struct.unpack_from("<I", data, 0x248)[0]
length = struct.unpack_from("<I", data, 0x24c)[0]
t = time.time()
subprocess.run(["xz", "-dc"] if data[off:off+6] == b"\xfd7zXZ\x00" else ["zstd", "-dcq"], input=data[off:off+length-4], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{time.time() - t:.2f}")
PY
)

cat > "$work/bench.sh" <<'GUEST'
set -eu
runs=$1
modprobe vfat 2>/dev/null || true
modprobe binfmt_misc 2>/dev/null || true
: > /tmp/verify.txt
for i in $(seq "$runs"); do
    suture load --json /tmp/bench/livepatch-runpre_bench.ko > /tmp/load.json 2>/dev/null
    sed -n 's/.*"verifySeconds":\([0-9.e-]*\).*/\1/p' /tmp/load.json >> /tmp/verify.txt
    grep -o '"status":"[a-zA-Z]*","detail"' /tmp/load.json | sort | uniq -c | sed 's/^/status /' > /tmp/statuses.txt
    suture unload livepatch_runpre_bench > /dev/null 2>&1
done
sort -n /tmp/verify.txt | awk '{ v[NR] = $1 } END { print "verify", v[int((NR + 1) / 2)] }'
cat /tmp/statuses.txt
GUEST
out=$("$suture" vm --modules vfat,binfmt_misc --add "$work:/tmp/bench" -- sh /tmp/bench/bench.sh "$runs")
load=$(printf '%s\n' "$out" | awk '$1 == "verify" { print $2 }')
ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }

echo "run-pre check of ${fixtures// /, }"
echo "  $functions functions checked ($replaced replaced, the rest referenced by klp relocations)"
printf '  build time: verify phase               %6s ms   (goal <= 1000)\n' "$(ms "$verify")"
printf '  one-time vmlinux extraction (cached)   %6s ms\n' "$(ms "$payload")"
printf '  load time in the guest (median of %s)  %6s ms   (goal <= 100, TCG)\n' "$runs" "$(ms "$load")"
printf '%s\n' "$out" | awk '$1 == "status" { $1 = "   "; print }'
