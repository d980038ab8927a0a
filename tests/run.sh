#!/usr/bin/env bash
# run.sh - run every test tier and print "N passed, N failed" (exit 1 on any failure).
#   tests/run.sh            unit + kern + e2e + deb + asan + fuzz + vm
#   tests/run.sh unit|kern|e2e|deb|asan|fuzz|vm [bats filter args...]
# The e2e tier needs root (BPF, bpffs); without root those tests skip with a reason.
# The deb tier builds the Debian package from a clean copy of the tree and checks it
# (tests/e2e/package.bats, `make deb-test`); it skips when dpkg-buildpackage, debhelper or lintian
# is missing. DEB=0 leaves it out of "all".
# The vm tier boots a Debian 6.12 kernel under qemu (tools/vmtest) and runs the tier "guest"
# inside it: the TLS tests with kTLS and with --no-ktls, and the kernel tier. VM_KERNELS
# (default "6.12") lists the kernels; VM=0 skips the tier.
# The asan tier runs the sanitized builds (make asan: ASan + UBSan) of the unit tests, and
# ASAN_E2E (a part of the end-to-end suite that reaches every module) with the sanitized daemon
# and splicectl; any sanitizer report fails. ASAN=0 leaves it out of "all".
# The fuzz tier replays each fuzz target's seeds (tests/fuzz/corpus/NAME) and fuzzes it for
# FUZZ_TEST_SECONDS (default 20). FUZZ=0 leaves it out of "all".
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

# the sanitized end-to-end part: every module (routing, balancing, failover, parser refusals,
# bodies on splice(2) and on the kernel path, TLS, health, reload, live upgrade, the control
# socket and metrics, the drain on SIGTERM) on the path the kernel allows, and the tunnels
# again with --no-splice (userspace relay). Files, not single tests, so a new test in them
# runs here too.
ASAN_E2E=${ASAN_E2E:-"config routing balance failover smuggling accesslog limits transfer tls
	health reload upgrade lifecycle ops websocket rules desync"}
ASAN_E2E_NOSPLICE=${ASAN_E2E_NOSPLICE:-"websocket"}
asan_e2e() {
	local f files=() nosplice=()
	for f in $ASAN_E2E; do files+=("tests/e2e/$f.bats"); done
	for f in $ASAN_E2E_NOSPLICE; do nosplice+=("tests/e2e/$f.bats"); done
	SPLICED_ARGS= run_tap "asan: e2e (bats), kernel path allowed" bats --tap "$@" "${files[@]}"
	SPLICED_ARGS=--no-splice run_tap "asan: e2e (bats), --no-splice" \
		bats --tap "$@" "${nosplice[@]}"
}

# fuzz_one NAME: TAP lines for .output/tests/fuzz_NAME: its seeds replayed, then fuzzed for
# FUZZ_TEST_SECONDS in a scratch corpus (the seeds are not touched); a crash input is kept in
# .output/fuzz-artifacts/
FUZZ_NAMES=${FUZZ_NAMES:-"http resp conf"}
fuzz_one() {
	local n=$1 bin=$OUT/tests/fuzz_$1 seeds=tests/fuzz/corpus/$1 work out rc
	local secs=${FUZZ_TEST_SECONDS:-20}
	if [ ! -x "$bin" ]; then
		echo "not ok - fuzz_$n: $bin missing: run 'make fuzzers'"
		return
	fi
	mkdir -p "$OUT/fuzz-artifacts"
	out=$(mktemp)
	"$bin" -runs=0 -artifact_prefix="$OUT/fuzz-artifacts/$n-" "$seeds" >"$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok - fuzz_$n: $(ls "$seeds" | wc -l) seeds replayed"
	else
		echo "not ok - fuzz_$n: seeds replayed: exit $rc"
		tail -n 40 "$out" | sed 's/^/#   /'
	fi
	work=$(mktemp -d)
	"$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$OUT/fuzz-artifacts/$n-" "$work" "$seeds" >"$out" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok - fuzz_$n: $secs s, $(sed -n 's/^stat::number_of_executed_units: *//p' "$out") inputs"
	else
		echo "not ok - fuzz_$n: $secs s: exit $rc (reproduce: $bin FILE; FILE in $OUT/fuzz-artifacts/)"
		grep -v '^#[0-9]' "$out" | tail -n 60 | sed 's/^/#   /'
	fi
	rm -rf "$work" "$out"
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
	# kernel.bats chooses its daemon flags itself and runs once; package.bats is the deb tier
	both=$(ls tests/e2e/*.bats | grep -vE '/(kernel|package).bats$')
	# shellcheck disable=SC2086
	SPLICED_ARGS= run_tap "e2e (bats), kernel path allowed" bats --tap "$@" $both
	# shellcheck disable=SC2086
	SPLICED_ARGS=--no-splice run_tap "e2e (bats), --no-splice" bats --tap "$@" $both
	run_tap "e2e (bats), kernel path" bats --tap "$@" tests/e2e/kernel.bats
fi
if { [ "$tiers" = all ] && [ "${DEB:-1}" != 0 ]; } || [ "$tiers" = deb ]; then
	t0=$(date +%s)
	run_tap "deb (bats), package" bats --tap "$@" tests/e2e/package.bats
	echo "# deb: took $(($(date +%s) - t0)) s"
fi

if { [ "$tiers" = all ] && [ "${ASAN:-1}" != 0 ]; } || [ "$tiers" = asan ]; then
	t0=$(date +%s)
	san=$OUT/asan
	if [ ! -x "$san/spliced" ] || [ ! -x "$san/splicectl" ]; then
		echo "not ok - asan: $san/spliced or $san/splicectl missing: run 'make asan'"
		fail=$((fail + 1))
	else
		# a report makes the process exit non-zero (abort: the test sees a dead daemon too);
		# the daemon's reports go to files, since its stderr is not always looked at and it
		# may run as nobody: helpers.bash fails the test that produced one
		sanlogs=$(mktemp -d /tmp/spliced-sanitizer.XXXXXX)
		chmod 1777 "$sanlogs"
		bindir=$(mktemp -d /tmp/spliced-asan-bin.XXXXXX)
		chmod 0755 "$bindir"
		# copies, so a concurrent rebuild cannot swap them mid-run (as e2e_bins does)
		cp "$san/spliced" "$san/splicectl" "$bindir/"
		trap 'rm -f "$log"; rm -rf "$sanlogs" "$bindir"' EXIT
		export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:disable_coredump=1"
		export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
		for t in "$san"/tests/test_*; do
			[ -x "$t" ] || continue
			run_tap "asan: unit: $(basename "$t")" "$t"
		done
		ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$sanlogs/asan" \
			UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$sanlogs/ubsan" \
			SANITIZER_LOG_DIR=$sanlogs SPLICED_BIN=$bindir/spliced \
			SPLICECTL=$bindir/splicectl TLS_BULK_MIB=128 TLS_SMALL=1 \
			asan_e2e "$@"
		# a report no test was charged with (a process that outlived its test)
		for f in "$sanlogs"/*; do
			[ -f "$f" ] || continue
			echo "not ok - asan: sanitizer report outside any test: $(basename "$f")"
			sed 's/^/#   /' "$f" | head -n 60
			fail=$((fail + 1))
		done
		unset ASAN_OPTIONS UBSAN_OPTIONS
	fi
	echo "# asan: took $(($(date +%s) - t0)) s"
fi
if { [ "$tiers" = all ] && [ "${FUZZ:-1}" != 0 ]; } || [ "$tiers" = fuzz ]; then
	t0=$(date +%s)
	for n in $FUZZ_NAMES; do
		run_tap "fuzz: fuzz_$n" fuzz_one "$n"
	done
	echo "# fuzz: took $(($(date +%s) - t0)) s"
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
