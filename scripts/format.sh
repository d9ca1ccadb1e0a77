#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Formats the Swift sources with swift-format and the repository's
# .swift-format (4 spaces, lines up to 120 columns).
#   scripts/format.sh          rewrite Sources, Tests and Package.swift in place
#   scripts/format.sh --check  change nothing; list the files that would change
#                              (exit status 1 when there are any)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
files=$(git ls-files 'Package.swift' 'Sources/*.swift' 'Tests/*.swift' 'Benchmarks/*.swift')
if [[ "${1:-}" == "--check" ]]; then
    changed=0
    for f in $files; do
        if ! swift-format format --configuration .swift-format "$f" | cmp -s - "$f"; then
            echo "$f"
            changed=1
        fi
    done
    exit "$changed"
fi
# shellcheck disable=SC2086
swift-format format --configuration .swift-format --in-place --parallel $files
