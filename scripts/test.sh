#!/usr/bin/env bash
# Runs the whole suite (unit tests, then kernel end-to-end tests as root) and ends with
# the line "N passed, N failed" that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
bun test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
skipped=$(grep -Eo '^ *[0-9]+ skip$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
# Skipped tests (each says why in its name) are reported, then the line CI reads, last.
if [ "$skipped" != 0 ]; then echo "$skipped skipped"; fi
echo "$passed passed, $failed failed"
exit "$status"
