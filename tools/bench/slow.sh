#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# slow.sh - how much traffic an injected slow server still gets: three origins behind one pool,
# one of them answering DELAY ms late, under wrk with each balancing algorithm, without and with
# `eject slow`; the share of requests each server answered (from the origins' request logs) and
# wrk's latency, written as a section of docs/benchmarks.md.
#
#   tools/bench/slow.sh [--quick] [--delay MS] [--out FILE|-]
#
#   --quick    3 s per load instead of 10 s
#   --delay    the slow server's delay (default 20 ms; the others answer at once)
#   --out      the markdown file whose slow-server section is replaced or appended (default
#              docs/benchmarks.md; "-": print the section only)
#
# Every process started here is tracked by PID and stopped on exit; every load is bounded by
# timeout(1).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tools/bench/section.sh
. "$ROOT/tools/bench/section.sh"
QUICK=0
DELAY=20
OUT="$ROOT/docs/benchmarks.md"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--delay) DELAY=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h | --help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "slow.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
SECS=$((QUICK ? 3 : 10))
TAG="slow server section"
TMP=$(mktemp -d /tmp/spliced-slow.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
log() { echo "slow.sh: $*" >&2; }
command -v wrk >/dev/null || { log "wrk not installed"; exit 1; }
cp "${SPLICED_BIN:-.output/spliced}" "$TMP/spliced" && cp "${ORIGIN_BIN:-.output/tests/origin}" "$TMP/origin" ||
	{ log "build first: make all"; exit 1; }

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 10000))
		[ -z "$(ss -Htan "( sport = :$p )")" ] && { echo "$p"; return; }
	done
}

declare -A PORT
echo "$DELAY" >"$TMP/c.delay"
# 1000 different paths, so that `hash uri` has keys to spread
cat >"$TMP/paths.lua" <<'LUA'
request = function()
	return wrk.format("GET", "/k" .. math.random(1000))
end
LUA
for s in a b c; do
	PORT[$s]=$(free_port)
	extra=()
	[ "$s" = c ] && extra=(-D "$TMP/c.delay")
	"$TMP/origin" -p "${PORT[$s]}" -n "$s" -l "$TMP/$s.log" "${extra[@]}" >"$TMP/$s.out" 2>&1 &
	PIDS+=($!)
done
sleep 0.5

# run ALGO EJECT: one load; prints "total a b c p50 p99"
run() {
	local algo=$1 eject=$2 port conf=$TMP/spliced.conf pid n0 n1 s
	port=$(free_port)
	cat >"$conf" <<CONF
global { access_log off; pin_path /sys/fs/bpf/spliced-slow-$$; workers 2; }
listener web { bind 127.0.0.1:$port; route { pool p; } }
pool p {
	balance $algo;
	$([ "$eject" = on ] && echo "eject slow 3 window 1s min_requests 5 threshold 5ms; eject consecutive_failures 5 base 2s;")
	server a 127.0.0.1:${PORT[a]}; server b 127.0.0.1:${PORT[b]}; server c 127.0.0.1:${PORT[c]};
}
CONF
	"$TMP/spliced" -d -f "$conf" >"$TMP/spliced.err" 2>&1 &
	pid=$!
	PIDS+=($pid)
	for _ in $(seq 50); do [ -n "$(ss -Hltn "( sport = :$port )")" ] && break; sleep 0.1; done
	declare -A before
	for s in a b c; do before[$s]=$(wc -l <"$TMP/$s.log" 2>/dev/null || echo 0); done
	timeout $((SECS + 20)) wrk -t1 -c16 -d"${SECS}s" --latency -s "$TMP/paths.lua" \
		"http://127.0.0.1:$port/" >"$TMP/wrk.out" 2>&1
	kill -INT "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -rf "/sys/fs/bpf/spliced-slow-$$"
	local counts=() total=0
	for s in a b c; do
		n1=$(wc -l <"$TMP/$s.log")
		counts+=($((n1 - before[$s])))
		total=$((total + n1 - before[$s]))
	done
	echo "$total ${counts[*]} $(awk '$1 == "50%" { a = $2 } $1 == "99%" { b = $2 } END { print a, b }' "$TMP/wrk.out")"
}

rows=()
for algo in round_robin least_conn random "hash uri"; do
	for eject in off on; do
		log "balance $algo, eject slow $eject (${SECS}s)"
		read -r total a b c p50 p99 < <(run "$algo" "$eject")
		rows+=("| \`$algo\` | $eject | $total | $a | $b | $c | $(awk -v c="$c" -v t="$total" 'BEGIN { printf "%.1f %%", t ? 100 * c / t : 0 }') | $p50 | $p99 |")
	done
done

section() {
	echo "<!-- $TAG: written by tools/bench/slow.sh; tools/bench/run.sh keeps it -->"
	echo "## A slow server — \`tools/bench/slow.sh\`"
	echo
	echo "Generated on $(date -u '+%Y-%m-%d %H:%M') UTC, kernel $(uname -r), one run per row."
	echo "Three origins behind one pool, server c answering ${DELAY} ms late (the origin's \`-D\`"
	echo "delay file), a and b at once; \`wrk -t1 -c16 -d${SECS}s --latency\` with a script that asks"
	echo "for one of 1000 paths at random, through spliced (2 workers). Requests per server from the"
	echo "origins' request logs. \"eject slow on\":"
	echo "\`eject slow 3 window 1s min_requests 5 threshold 5ms; eject consecutive_failures 5 base 2s;\`"
	echo "(c is ejected for 2 s, 4 s, 8 s ... while it stays slow, and comes back in between)."
	echo "\`hash uri\` keeps each path on its server: c keeps its third of the keys unless it is"
	echo "ejected (its keys then move to a and b). Load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "(2 CPUs shared with other work: the shares matter, not the rates)."
	echo
	echo "| balance | eject slow | requests | a | b | c (slow) | c's share | p50 | p99 |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Round robin and hashing give the slow server its share whatever its latency;"
	echo "\`least_conn\` and \`random\` (two choices, the less loaded wins) already send it less,"
	echo "because its requests stay in flight longer; \`eject slow\` takes it out under every"
	echo "algorithm, at the cost of the requests it answers between ejections."
	echo "<!-- end of $TAG -->"
}

if [ "$OUT" = - ]; then
	section
	exit 0
fi
section >"$TMP/section.md"
write_section "$TAG" "$TMP/section.md" "$OUT"
log "wrote the slow-server section of $OUT"
