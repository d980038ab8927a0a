#!/usr/bin/env bash
# run.sh - run every test tier and print "N passed, N failed" (exit 1 on any failure).
#   tests/run.sh            unit + kern + e2e + vm
#   tests/run.sh unit|kern|e2e|vm [bats filter args...]
# The e2e tier needs root (BPF, bpffs); without root those tests skip with a reason.
# The vm tier boots a Debian 6.12 kernel under qemu (tools/vmtest) and runs the tier "guest"
# inside it: the TLS tests with kTLS and with --no-ktls, and the kernel tier. VM_KERNELS
# (default "6.12") lists the kernels; VM=0 skips the tier.
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
	# dependencies point one way (docs/ARCHITECTURE.md, Layers)
	run_tap "unit: layers" tests/layers.sh
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

if [ "$tiers" = guest ]; then
	# inside tools/vmtest: what the host kernel cannot show (kTLS), and the kernel tier on
	# another kernel. TLS_BULK_MIB: see tls.bats.
	export TLS_BULK_MIB=${TLS_BULK_MIB:-128} TLS_SMALL=${TLS_SMALL:-1}
	# the kernel tier's sizes / 8 (test_duplex_2g: 256 MiB each way): TCG moves 0.04 GB/s
	# and the full sizes take more than three minutes, past the tests' own time bounds
	export KERN_SOCKMAP_SCALE=${KERN_SOCKMAP_SCALE:-8}
	nofilter='X-Forwarded-Proto|bulk|keep-alive|close_notify|upstream TLS|kTLS|KeyUpdate|resume'
	run_tap "guest $(uname -r): unit test_tls" "$OUT/tests/test_tls"
	for t in "$OUT"/tests/kern_*; do
		[ -x "$t" ] || continue
		run_tap "guest $(uname -r): kern: $(basename "$t")" "$t"
	done
	SPLICED_ARGS= run_tap "guest $(uname -r): tls.bats, kTLS" \
		bats --tap --timing "$@" tests/e2e/tls.bats
	# --no-ktls changes the data path only: the handshake, SNI, ALPN and -n tests of the
	# first pass are not run again (TCG makes each of them cost 5-20 s)
	SPLICED_ARGS=--no-ktls run_tap "guest $(uname -r): tls.bats, --no-ktls" \
		bats --tap --timing -f "${TLS_NOKTLS_FILTER:-$nofilter}" "$@" tests/e2e/tls.bats
fi
if { [ "$tiers" = all ] && [ "${VM:-1}" != 0 ]; } || [ "$tiers" = vm ]; then
	for k in ${VM_KERNELS:-6.12}; do
		t0=$(date +%s)
		# one boot per kernel; 1 GiB of guest RAM for the bulk transfers' buffers and
		# the upload file on the guest's tmpfs
		run_tap "vm: kernel $k" tools/vmtest --kernel "$k" --mem 1G --timeout 1200 \
			-e PATH=/usr/sbin:/usr/bin:/sbin:/bin -- tests/run.sh guest "$@"
		echo "# vm: kernel $k took $(($(date +%s) - t0)) s"
	done
fi

echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
