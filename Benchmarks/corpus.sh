#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Suture on real fixes: the .c files that Debian 12's bookworm-security 6.12
# line (built with gcc-12) changes from one upload to the next, each as its
# own diff, built for the older kernel and loaded in that kernel's VM.
#
# For each version pair OLD:NEW, `suture kernel fetch` gets both kernels
# (the older is the target; the newer's linux-source gives the changed
# files) and `suture kernel prepare` prepares the older. Each changed .c
# file that exists in both versions (arch/ only for x86) is a candidate; the
# candidates of all pairs are ordered by sha256(SEED:pair:path) and tried in
# that order until SAMPLE of them were tried. A file that the amd64
# configuration does not build (suture build says so before compiling) is
# not tried and not counted. Every built patch of a pair is then proven in
# one guest boot of the older kernel: modprobe its module (for a module
# file), load (the transition must complete), unload, and no kernel error,
# warning or oops logged from the patch's load on. Warnings logged before
# the load (boot, modprobe) are reported apart.
#
# Categories: ok, needs-headers (the patched compile fails), no-change-here
# (no functional change in this configuration), refused: <reason>,
# build-error: <message>, guest-failure: <status>.
# ratio = ok / (tried - needs-headers - no-change-here)
#
# Usage: Benchmarks/corpus.sh [--pairs 117:118,115:117] [--seed S] [--sample N]
#            [--out DIR] [--vm-timeout SECONDS] [--vm-memory MB]
# Writes DIR/results.tsv (pair, file, target, category, detail, build
# seconds), DIR/summary.json, the diffs, the modules and the guest logs.
# Exit status: 0; 1 when any file is build-error or guest-failure (the CI
# slice's criterion); 64 usage; 2 when the corpus could not be set up.
set -uo pipefail
cd "$(dirname "$0")/.."
suture=${SUTURE_BINARY:-$PWD/.build/release/suture}
pairs="117:118"
seed=1
sample=60
out=""
vm_timeout=1800
vm_memory=1024
while [ $# -gt 0 ]; do
    case "$1" in
        --pairs) pairs=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --sample) sample=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --vm-timeout) vm_timeout=$2; shift 2 ;;
        --vm-memory) vm_memory=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "corpus.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
[[ "$sample" =~ ^[0-9]+$ && "$sample" -gt 0 ]] || { echo "corpus.sh: --sample takes a positive number" >&2; exit 64; }
[ -x "$suture" ] || { echo "corpus.sh: no $suture: run swift build -c release first" >&2; exit 2; }
command -v jq >/dev/null || { echo "corpus.sh: needs jq" >&2; exit 2; }
cache=${SUTURE_CACHE:-/var/cache/suture}
out=${out:-$(mktemp -d /tmp/suture-corpus.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Extracted .c files of each version, kept between runs.
sources=${CORPUS_SOURCES:-$cache/corpus-sources}
mkdir -p "$sources"

say() { echo "corpus: $*" >&2; }
release() { echo "6.12.$1+deb12-amd64"; }
now() { date +%s.%N; }

# 1. Kernels and their changed files.
extract() { # VERSION → $sources/VERSION (the .c files of its linux-source)
    local v=$1 dir=$sources/$1
    [ -e "$dir/.complete" ] && return 0
    rm -rf "$dir" && mkdir -p "$dir"
    local tarball=$cache/kernels/$(release "$v")/usr/src/linux-source-6.12.tar.xz
    nice tar -xJf "$tarball" -C "$dir" --strip-components=1 --wildcards '*.c' && touch "$dir/.complete"
}
candidates=$out/candidates
: > "$candidates"
for pair in ${pairs//,/ }; do
    old=${pair%%:*} new=${pair##*:}
    for v in "$old" "$new"; do
        nice "$suture" kernel fetch "$(release "$v")" >&2 || { say "cannot fetch $(release "$v")"; exit 2; }
        extract "$v" || { say "cannot extract the source of $v"; exit 2; }
    done
    nice "$suture" kernel prepare --kernel "$(release "$old")" >&2 || { say "cannot prepare $(release "$old")"; exit 2; }
    changed=$sources/changed-$old-$new
    if [ ! -e "$changed" ]; then
    (cd "$sources/$old" && find . -name '*.c' | sed 's|^\./||') | sort > "$out/files-$old"
    (cd "$sources/$new" && find . -name '*.c' | sed 's|^\./||') | sort > "$out/files-$new"
    # Kernel code only: no host tools, no other architecture, and none of
    # the x86 code that is not kernel text (boot, realmode, purgatory,
    # vDSO, EFI stub).
    comm -12 "$out/files-$old" "$out/files-$new" \
        | grep -Ev '^(tools|scripts|samples|Documentation|usr)/|^arch/x86/(boot|realmode|purgatory|tools|entry/vdso)/' \
        | grep -Ev '^arch/([^x]|x[^8])|^drivers/firmware/efi/libstub/' \
            > "$out/common-$pair"
    while read -r f; do
        cmp -s "$sources/$old/$f" "$sources/$new/$f" || echo "$f"
    done < <(sort -u "$out/common-$pair") > "$changed.partial" && mv "$changed.partial" "$changed"
    rm -f "$out/files-$old" "$out/files-$new" "$out/common-$pair"
    fi
    while read -r f; do
        printf '%s %s %s\n' "$(printf '%s' "$seed:$pair:$f" | sha256sum | cut -c1-16)" "$pair" "$f"
    done < "$changed" >> "$candidates"
done
sort "$candidates" -o "$candidates"
say "$(wc -l < "$candidates") changed .c files in ${pairs}; trying $sample (seed $seed)"
[ -s "$candidates" ] || { say "no changed .c files in $pairs"; exit 2; }

# 2. Builds, in seeded order, until SAMPLE files were tried.
results=$out/results.tsv
: > "$results"
mkdir -p "$out/diffs" "$out/modules" "$out/builds"
tried=0 skipped=0 n=0
while read -r _ pair f && [ "$tried" -lt "$sample" ]; do
    old=${pair%%:*} new=${pair##*:}
    n=$((n + 1))
    id=$(printf 'c%03d' "$n")
    diff=$out/diffs/$id.diff
    diff -u --label "a/$f" --label "b/$f" "$sources/$old/$f" "$sources/$new/$f" > "$diff"
    # A build of the same diff in this --out is reused (a run can go on).
    if [ -e "$out/builds/$id.rc" ] && cmp -s "$diff" "$out/builds/$id.diff"; then
        read -r rc seconds < "$out/builds/$id.rc"
    else
        start=$(now)
        nice "$suture" build --kernel "$(release "$old")" --json --name "$id" -o "$out/modules" "$diff" \
            > "$out/builds/$id.json" 2> "$out/builds/$id.err"
        rc=$?
        seconds=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
        cp "$diff" "$out/builds/$id.diff"
        echo "$rc $seconds" > "$out/builds/$id.rc"
    fi
    report=$out/builds/$id.json
    target="" category="" detail=""
    if [ $rc -eq 0 ]; then
        target=$(jq -r '[.objects[].target] | join(",")' "$report")
        category="built"
    else
        code=$(jq -r '.error.code // "none"' "$report" 2>/dev/null || echo none)
        message=$(jq -r '.error.message // ""' "$report" 2>/dev/null | head -1)
        [ -n "$message" ] || message=$(head -1 "$out/builds/$id.err")
        if [[ "$message" == *" is not built in "* ]]; then
            skipped=$((skipped + 1))
            printf '%s\t%s\t%s\tnot-in-config\t%s\t%s\n' "$id" "$pair" "$f" "$message" "$seconds" >> "$out/skipped.tsv"
            continue
        elif jq -e '.error | .. | strings | select(test("patched source does not compile"))' "$report" >/dev/null 2>&1; then
            category="needs-headers"
        elif [ "$code" = build-no-functional-change ]; then
            category="no-change-here"
        elif [ "$(jq -r '[.. | objects | select(has("refusals")) | .refusals[]?] | length' "$report" 2>/dev/null)" \
            -gt 0 ] 2>/dev/null; then
            category="refused"
            detail=$(jq -r '[.. | objects | select(has("refusals")) | .refusals[]?
                | "\(.function) (\(.object)): \(.reason)"] | unique | join("; ")' "$report")
        elif [ "$code" = build-refused ]; then
            category="refused"
            detail=$message
        else
            category="build-error"
            detail="$code: $message"
        fi
    fi
    tried=$((tried + 1))
    # No empty fields: read splits on runs of tabs.
    detail=${detail//$'\t'/ }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$pair" "$f" "${target:--}" "$category" "${detail:--}" "$seconds" \
        >> "$results"
    say "$tried/$sample $id $f: ${category}${detail:+: ${detail:0:200}} (${seconds} s)"
done < "$candidates"

# 3. One guest per pair for every built patch (another boot for the rest
# when a guest dies).
guest_script() { # ids in "$@" as id:target
    echo 'early() { dmesg -c 2>/dev/null | grep -E "WARNING:|BUG:|Oops|Call Trace|livepatch: .*([Ee]rror|fail)" | head -3 | sed "s/^/CORPUS-EARLY $1 /"; }'
    echo 'early boot'
    for it in "$@"; do
        local id=${it%%:*} targets=${it#*:}
        echo "echo CORPUS-START $id"
        for m in ${targets//,/ }; do
            [ "$m" = vmlinux ] || echo "modprobe $m > /tmp/mp 2>&1 || echo \"CORPUS-NOTE $id modprobe $m: \$(head -1 /tmp/mp)\""
        done
        cat << EOF
early $id
if ! suture load --timeout 60 /root/$id.ko > /tmp/load 2>&1; then
    echo "CORPUS-RESULT $id guest-failure: load: \$(grep -v '^ ' /tmp/load | tail -1)"
    suture unload livepatch_$id > /dev/null 2>&1
    dmesg -c > /dev/null
else
    if ! suture unload livepatch_$id > /tmp/unload 2>&1; then
        echo "CORPUS-RESULT $id guest-failure: unload: \$(tail -1 /tmp/unload)"
    elif [ -n "\$(ls /sys/kernel/livepatch)" ]; then
        echo "CORPUS-RESULT $id guest-failure: still registered after unload"
    else
        log=\$(dmesg -c | grep -E 'livepatch: .*([Ee]rror|fail|invalid)|Oops|BUG:|WARNING:|Call Trace|panic' | head -1)
        if [ -n "\$log" ]; then echo "CORPUS-RESULT $id guest-failure: kernel log: \$log"; else echo "CORPUS-RESULT $id ok"; fi
    fi
fi
EOF
    done
}
guest_status=$out/guest.tsv
: > "$guest_status"
: > "$out/early.txt"
for pair in ${pairs//,/ }; do
    old=${pair%%:*}
    pending=()
    while IFS=$'\t' read -r id p _ target category _; do
        [ "$p" = "$pair" ] && [ "$category" = built ] && pending+=("$id:$target")
    done < "$results"
    round=0
    while [ ${#pending[@]} -gt 0 ] && [ $round -lt 5 ]; do
        round=$((round + 1))
        log=$out/guest-$pair-$round.log
        guest_script "${pending[@]}" > "$out/guest-$pair-$round.sh"
        args=(--add "$out/guest-$pair-$round.sh:/root/corpus.sh")
        modules=()
        for it in "${pending[@]}"; do
            args+=(--add "$(jq -r .module "$out/builds/${it%%:*}.json"):/root/${it%%:*}.ko")
            for m in ${it#*:}; do for m in ${m//,/ }; do [ "$m" = vmlinux ] || modules+=("$m"); done; done
        done
        [ ${#modules[@]} -gt 0 ] && args+=(--modules "$(printf '%s\n' "${modules[@]}" | sort -u | paste -sd,)")
        say "guest $pair round $round: ${#pending[@]} patch(es)"
        nice "$suture" vm --kernel "$(release "$old")" --timeout "$vm_timeout" --memory "$vm_memory" "${args[@]}" -- sh /root/corpus.sh \
            > "$log" 2> "$log.err"
        vm_rc=$?
        grep '^CORPUS-EARLY' "$log" | sed "s/^CORPUS-EARLY /$pair /" >> "$out/early.txt"
        grep '^CORPUS-NOTE' "$log" | sed "s/^CORPUS-NOTE /$pair /" >> "$out/early.txt"
        rest=()
        for it in "${pending[@]}"; do
            id=${it%%:*}
            line=$(grep "^CORPUS-RESULT $id " "$log" | head -1)
            if [ -n "$line" ]; then
                printf '%s\t%s\n' "$id" "${line#CORPUS-RESULT $id }" >> "$guest_status"
            elif grep -q "^CORPUS-START $id\$" "$log"; then
                printf '%s\tguest-failure: guest ended (suture vm exit %s) during this patch\n' "$id" "$vm_rc" \
                    >> "$guest_status"
            else
                rest+=("$it")
            fi
        done
        [ ${#rest[@]} -eq ${#pending[@]} ] && {
            say "guest made no progress (exit $vm_rc): $(tail -2 "$log.err")"
            for it in "${rest[@]}"; do
                printf '%s\tguest-failure: no guest (suture vm exit %s)\n' "${it%%:*}" "$vm_rc" >> "$guest_status"
            done
            rest=()
        }
        pending=("${rest[@]}")
    done
done

# 4. Table.
final=$out/final.tsv
: > "$final"
while IFS=$'\t' read -r id pair f target category detail seconds; do
    [ "$detail" = - ] && detail=""
    if [ "$category" = built ]; then
        g=$(awk -F'\t' -v id="$id" '$1 == id { print $2; exit }' "$guest_status")
        if [ "$g" = ok ]; then category=ok detail=""
        else category="guest-failure" detail="${g#guest-failure: }"; fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$pair" "$f" "$target" "$category" "${detail:--}" "$seconds" >> "$final"
done < "$results"

count() { awk -F'\t' -v c="$1" '$5 == c' "$final" | wc -l; }
ok=$(count ok) headers=$(count needs-headers) nochange=$(count no-change-here)
refused=$(count refused) builderr=$(count build-error) guestfail=$(count guest-failure)
total=$(wc -l < "$final")
eligible=$((total - headers - nochange))
ratio=$(awk -v a="$ok" -v b="$eligible" 'BEGIN { if (b) printf "%.3f", a / b; else print "n/a" }')
times=$(cut -f7 "$final" | sort -n)
median=$(echo "$times" | awk '{ v[NR] = $1 } END { if (!NR || v[1] == "") print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
max=$(echo "$times" | tail -1)
max=${max:-0}
modfiles=$(awk -F'\t' '$4 != "vmlinux" && $4 != "-"' "$final" | wc -l)
vmlfiles=$(awk -F'\t' '$4 == "vmlinux"' "$final" | wc -l)

{
    echo "Suture corpus: pairs $pairs, seed $seed, sample $sample ($(wc -l < "$candidates") changed .c files; $skipped not built in the configuration, not counted)"
    printf '%-16s %5s\n' category files
    for c in ok needs-headers no-change-here refused build-error guest-failure; do printf '%-16s %5s\n' "$c" "$(count "$c")"; done
    printf '%-16s %5s  (vmlinux %s, modules %s)\n' tried "$total" "$vmlfiles" "$modfiles"
    echo "ratio ok/(tried - needs-headers - no-change-here) = $ok/$eligible = $ratio"
    echo "build time per file: median ${median} s, max ${max} s"
    for c in ok needs-headers no-change-here refused build-error guest-failure; do
        [ "$(count "$c")" -gt 0 ] || continue
        echo
        echo "$c:"
        awk -F'\t' -v c="$c" '$5 == c { printf "  %s %s [%s]%s\n", $2, $3, $4, ($6 == "-" ? "" : ": " $6) }' "$final"
    done
    if [ -s "$out/early.txt" ]; then
        echo
        echo "logged before a patch loaded (boot, modprobe; not counted against the patch):"
        sed 's/^/  /' "$out/early.txt"
    fi
} | tee "$out/table.txt"

jq -n --arg pairs "$pairs" --argjson seed "$(jq -n --arg s "$seed" '$s | tonumber? // $s')" --argjson sample "$sample" \
    --argjson ok "$ok" --argjson headers "$headers" --argjson nochange "$nochange" --argjson refused "$refused" \
    --argjson builderr "$builderr" --argjson guestfail "$guestfail" --argjson tried "$total" \
    --argjson eligible "$eligible" --arg ratio "$ratio" --argjson median "$median" --argjson max "${max:-0}" \
    --argjson vmlinux "$vmlfiles" --argjson modules "$modfiles" --rawfile final "$final" \
    '{pairs: $pairs, seed: $seed, sample: $sample, tried: $tried, vmlinuxFiles: $vmlinux, moduleFiles: $modules,
      categories: {ok: $ok, needsHeaders: $headers, noChangeHere: $nochange, refused: $refused,
                   buildError: $builderr, guestFailure: $guestfail},
      eligible: $eligible, ratio: ($ratio | tonumber? // null),
      buildSeconds: {median: $median, max: $max},
      files: [$final | split("\n")[] | select(length > 0) | split("\t")
              | {id: .[0], pair: .[1], file: .[2], target: .[3], category: .[4], detail: (if .[5] == "-" then null else .[5] end),
                 buildSeconds: (.[6] | tonumber)}]}' > "$out/summary.json"
say "results in $out (table.txt, summary.json)"
[ "$builderr" -eq 0 ] && [ "$guestfail" -eq 0 ]
