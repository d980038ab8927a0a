#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# rules.sh - what request rules cost: keep-alive requests per second through spliced with no
# rules, and through spliced with 20 routes (half of them regexes, the request taking the last
# one), 10 header rules (5 each way, with variables) and request IDs on; A/B in one session,
# alternating, REPS runs each, medians and their ratio.
#
#   tools/bench/rules.sh [--quick] [--out FILE|-]
#
#   --quick   3 runs of 3 s each (development); default 7 runs of 8 s
#   --out     the markdown file whose rules section (between its markers) is replaced or
#             appended (default docs/benchmarks.md; "-": print the section only)
#
# Every process started here is tracked by PID and stopped on exit; every client is bounded
# by timeout(1).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tools/bench/section.sh
. "$ROOT/tools/bench/section.sh"
QUICK=0 OUT="$ROOT/docs/benchmarks.md"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--out)
		OUT=$2
		shift
		;;
	-h | --help)
		sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "rules.sh: unknown argument '$1'" >&2
		exit 2
		;;
	esac
	shift
done
REPS=7 SECS=8
[ "$QUICK" = 1 ] && REPS=3 SECS=3
log() { printf '[rules-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
for tool in wrk curl timeout python3; do
	command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
[ -x .output/spliced ] && [ -x .output/tests/origin ] || die "build first (make)"

TMP=$(mktemp -d /tmp/spliced-rules-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	sleep 0.3
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "/sys/fs/bpf/spliced-rules-bench-$$-a" "/sys/fs/bpf/spliced-rules-bench-$$-b" "$TMP"
}
trap cleanup EXIT INT TERM
cp .output/spliced .output/tests/origin "$TMP/"
read -r P_ORIGIN P_A P_B < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')

cat >"$TMP/a.conf" <<EOF
global { pin_path /sys/fs/bpf/spliced-rules-bench-$$-a; access_log off; workers 2; }
listener web { bind 127.0.0.1:$P_A; route { pool p; } }
pool p { keepalive 64; server origin 127.0.0.1:$P_ORIGIN; }
EOF
{
	echo "global { pin_path /sys/fs/bpf/spliced-rules-bench-$$-b; access_log off; workers 2; }"
	echo "listener web {"
	echo "	bind 127.0.0.1:$P_B;"
	echo "	request_id on;"
	for i in 1 2 3 4 5; do
		echo "	request_header set X-Bench-$i \"\$remote_addr \$host $i\";"
		echo "	response_header set X-Resp-$i \"\$route \$status $i\";"
	done
	for i in $(seq 1 9); do
		echo "	route p$i { path /prefix$i/; pool p; }"
		echo "	route x$i { path ~^/v$i/[a-z]+/item/([0-9]+)\$; header X-Tenant ~^t$i-; pool p; }"
	done
	echo "	route x10 { host ~^api[0-9]*\\.example\$; method POST PUT; pool p; }"
	echo "	route last { pool p; }"
	echo "}"
	echo "pool p { keepalive 64; server origin 127.0.0.1:$P_ORIGIN; }"
} >"$TMP/b.conf"
"$TMP/spliced" -n -f "$TMP/b.conf" >/dev/null || die "rules configuration refused"

"$TMP/origin" -p "$P_ORIGIN" -n bench >"$TMP/origin.log" 2>&1 &
PIDS+=($!)
"$TMP/spliced" -d -f "$TMP/a.conf" >"$TMP/a.log" 2>&1 &
PID_A=$!
PIDS+=($!)
"$TMP/spliced" -d -f "$TMP/b.conf" >"$TMP/b.log" 2>&1 &
PID_B=$!
PIDS+=($!)
for p in "$P_ORIGIN" "$P_A" "$P_B"; do
	for _ in $(seq 100); do
		curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$p/" && break
		sleep 0.1
	done
done
curl -s -D - -o /dev/null "http://127.0.0.1:$P_B/" | grep -qi '^X-Request-ID: [0-9a-f]\{32\}' ||
	die "the rules target does not answer with a request ID"

ticks() { # pid: utime+stime of the process (all its threads), clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
HZ=$(getconf CLK_TCK)
# run PORT PID: "req/s cpu_us_per_request" (the daemon's own CPU time: less noisy than rates
# on a shared machine)
run() {
	local t0 t1 out
	t0=$(ticks "$2")
	out=$(timeout $((SECS + 20)) wrk -t2 -c16 -d"${SECS}s" "http://127.0.0.1:$1/" 2>/dev/null)
	t1=$(ticks "$2")
	awk -v t="$((t1 - t0))" -v hz="$HZ" '
		/requests in/ { n = $1 } /^Requests\/sec:/ { r = $2 }
		END { printf "%d %.2f", r, n ? t * 1e6 / hz / n : 0 }' <<<"$out"
}
A=() B=() CA=() CB=()
for r in $(seq "$REPS"); do
	# alternate which goes first: drift of the machine hits both alike
	if ((r % 2)); then
		read -r ra ca < <(run "$P_A" "$PID_A")
		read -r rb cb < <(run "$P_B" "$PID_B")
	else
		read -r rb cb < <(run "$P_B" "$PID_B")
		read -r ra ca < <(run "$P_A" "$PID_A")
	fi
	A+=("$ra") B+=("$rb") CA+=("$ca") CB+=("$cb")
	log "run $r/$REPS: no rules $ra req/s $ca us/req, rules $rb req/s $cb us/req"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
MA=$(median "${A[@]}")
MB=$(median "${B[@]}")
RATIO=$(awk -v a="$MA" -v b="$MB" 'BEGIN { printf "%.3f", b / a }')
MCA=$(median "${CA[@]}")
MCB=$(median "${CB[@]}")
CRATIO=$(awk -v a="$MCA" -v b="$MCB" 'BEGIN { printf "%.3f", b / a }')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

SECTION=$(
	cat <<EOF
<!-- rules section: tools/bench/rules.sh -->
## Request rules

Keep-alive GET / through spliced (2 workers, wrk -t2 -c16, ${SECS} s runs, alternating A/B in
one session, median of $REPS runs each; load average at the end: $LOAD):

| configuration | req/s (median) | daemon CPU per request (median) | runs (req/s) |
|---|---|---|---|
| one route, no rules | $MA | $MCA us | ${A[*]} |
| 20 routes (10 regex, the request takes the last), 10 header rules with variables, request IDs on | $MB | $MCB us | ${B[*]} |

Ratio rules / no rules: **$RATIO** in req/s, **$CRATIO** in daemon CPU per request (the target
is keep-alive req/s within 5 %: at least 0.95; on this shared 2-vCPU machine the rates of two
runs of the same binary differ by more than that, the CPU per request less).
<!-- end of rules section -->
EOF
)
if [ "$OUT" = - ]; then
	printf '%s\n' "$SECTION"
	exit 0
fi
printf '%s\n' "$SECTION" >"$TMP/section.md"
write_section "rules section" "$TMP/section.md" "$OUT"
log "wrote $OUT (ratio $RATIO)"
