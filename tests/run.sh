#!/usr/bin/env bash
# run.sh - run every test tier and print "N passed, N failed" (exit 1 on any failure).
#   tests/run.sh            unit + kern + e2e
#   tests/run.sh unit|kern|e2e [bats filter args...]
# The e2e tier needs root (BPF, bpffs); without root those tests skip with a reason.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=.output
tiers=${1:-all}
shift || true
pass=0 fail=0 skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count_tap() { # stdin: TAP; updates counters, echoes the lines
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		"ok "*"# skip"* | "ok "*"# SKIP"*) skip=$((skip + 1)) ;;
		"ok "*) pass=$((pass + 1)) ;;
		"not ok "*) fail=$((fail + 1)) ;;
		esac
	done
}

run_tap() { # name, command...
	local name=$1 rc
	shift
	echo "# --- $name"
	"$@" >"$log" 2>&1
	rc=$?
	count_tap <"$log"
	# a crashed binary may print no "not ok" line: count it
	if [ $rc -ne 0 ] && ! grep -q '^not ok' "$log"; then
		echo "not ok - $name exited with status $rc"
		fail=$((fail + 1))
	fi
}

if [ "$tiers" = all ] || [ "$tiers" = unit ]; then
	for t in "$OUT"/tests/test_*; do
		[ -x "$t" ] || continue
		run_tap "unit: $(basename "$t")" "$t"
	done
fi
if [ "$tiers" = all ] || [ "$tiers" = kern ]; then
	for t in "$OUT"/tests/kern_*; do
		[ -x "$t" ] || continue
		run_tap "kern: $(basename "$t")" "$t"
	done
fi
if [ "$tiers" = all ] || [ "$tiers" = e2e ]; then
	# every end-to-end scenario runs on both data paths with the same assertions;
	# kernel.bats chooses its daemon flags itself and runs once
	both=$(ls tests/e2e/*.bats | grep -v '/kernel.bats$')
	# shellcheck disable=SC2086
	SPLICED_ARGS= run_tap "e2e (bats), kernel path allowed" bats --tap "$@" $both
	# shellcheck disable=SC2086
	SPLICED_ARGS=--no-splice run_tap "e2e (bats), --no-splice" bats --tap "$@" $both
	run_tap "e2e (bats), kernel path" bats --tap "$@" tests/e2e/kernel.bats
fi

echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
