#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# soak.sh - `make soak`: does anything accumulate over a long run? Not part of `make test`.
#
#   tests/soak/soak.sh
#
# SOAK_CONNS (1000000) short connections (wrk, Connection: close, a 1 KiB body each) through a
# daemon with two workers, `splice on` and a pool with `keepalive`, and beside them WebSocket
# tunnels one after the other (the kernel data path: BPF map insertions and removals), while
# SOAK_RELOADS (50) reloads (`splicectl reload`, a server's weight toggled) and SOAK_UPGRADES (3)
# live upgrades (SIGUSR2) run spread over the load. Then, after the load
# and the parked connections' keepalive_timeout, the daemon is measured again against the
# baseline taken after a warm-up:
#   - open file descriptors (/proc/PID/fd): not more than the baseline;
#   - VmRSS: at most baseline + SOAK_RSS_SLACK_MB (32): a leak of 32 bytes per connection would
#     pass that bound at one million connections;
#   - entries in the BPF maps (the pinned spliced_conns and the daemon's unpinned hash and
#     sockhash maps): back to the baseline;
#   - the worker connection tables (`splicectl -j show connections`): empty;
#   - errors: wrk's socket errors and non-2xx responses, failed tunnels (not byte-exact), failed
#     reloads, upgrades that did not complete: 0.
# After an upgrade the measured process is the new one (from the pid file). Prints one line per
# phase and a summary; exit 0 only when every check holds. Needs root (bpffs) for the map
# counts; without it they are reported as n/a. The whole run is bounded by SOAK_TIMEOUT
# (default 1800 s); wrk runs in chunks of SOAK_CHUNK (20) seconds until the count is reached
# and every reload and upgrade is done.
# SPLICED_BIN, ORIGIN_BIN and SPLICECTL override the binaries (e.g. the ASan build).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

CONNS=${SOAK_CONNS:-1000000}
RELOADS=${SOAK_RELOADS:-50}
UPGRADES=${SOAK_UPGRADES:-3}
LIMIT=${SOAK_TIMEOUT:-1800}
CHUNK=${SOAK_CHUNK:-20}
RSS_SLACK_MB=${SOAK_RSS_SLACK_MB:-32}
WRK_THREADS=${SOAK_WRK_THREADS:-2}
WRK_CONNS=${SOAK_WRK_CONNS:-64}
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=$(command -v python3)

for tool in wrk curl ss "$PYTHON"; do
	command -v "$tool" >/dev/null || {
		echo "soak: $tool is missing" >&2
		exit 2
	}
done

T0=$(date +%s)
TMP=$(mktemp -d /tmp/spliced-soak.XXXXXX)
PIN=/sys/fs/bpf/spliced-soak-$$
PIDS=()
cleanup() {
	local p
	[[ -f $TMP/spliced.pid ]] && kill -INT "$(cat "$TMP/spliced.pid")" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.5
	[[ -d $PIN ]] && rm -f "$PIN"/spliced_* && rmdir "$PIN" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

elapsed() { echo $(($(date +%s) - T0)); }
say() { printf '[%4ss] %s\n' "$(elapsed)" "$*"; }

# binaries copied, so a rebuild during the run cannot change what an upgrade executes
cp "${SPLICED_BIN:-.output/spliced}" "$TMP/spliced"
cp "${ORIGIN_BIN:-.output/tests/origin}" "$TMP/origin"
cp "${SPLICECTL:-.output/splicectl}" "$TMP/splicectl"
CTL=("$TMP/splicectl" -s "$TMP/control.sock")

free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_origin() { # NAME: its port in ORIGIN_PORT
	local out=$TMP/origin-$1.out i
	"$TMP/origin" -p 0 -n "$1" >"$out" 2>&1 &
	PIDS+=($!)
	for ((i = 0; i < 100; i++)); do
		grep -q '^listening on' "$out" && break
		sleep 0.05
	done
	ORIGIN_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out" | head -1)
}

start_origin a
O1=$ORIGIN_PORT
start_origin b
O2=$ORIGIN_PORT
PORT=$(free_port)
MPORT=$(free_port)
[[ -n $O1 && -n $O2 ]] || {
	echo "soak: the origins did not start" >&2
	exit 1
}

write_conf() { # WEIGHT_OF_A
	cat >"$TMP/spliced.conf.new" <<EOF
global {
	workers 2;
	pin_path $PIN;
	control $TMP/control.sock;
	metrics 127.0.0.1:$MPORT;
	pid_file $TMP/spliced.pid;
	access_log off;
}
listener web {
	bind 127.0.0.1:$PORT;
	splice on;
	route { pool p; }
}
pool p {
	keepalive 16;
	keepalive_timeout 2s;
	server a 127.0.0.1:$O1 weight $1;
	server b 127.0.0.1:$O2;
}
EOF
	mv "$TMP/spliced.conf.new" "$TMP/spliced.conf"
}

write_conf 1
"$TMP/spliced" -d -f "$TMP/spliced.conf" >>"$TMP/spliced.err" 2>&1 3>&- &
PIDS+=($!)
for ((i = 0; i < 250; i++)); do
	[[ -n $(ss -Hltn "( sport = :$PORT )") ]] && break
	sleep 0.02
done
if [[ -z $(ss -Hltn "( sport = :$PORT )") ]]; then
	echo "soak: spliced did not start:" >&2
	cat "$TMP/spliced.err" >&2
	exit 1
fi
grep -q 'kernel data path on' "$TMP/spliced.err" || say "note: no kernel data path ($(grep -m1 'bpf:' "$TMP/spliced.err"))"
URL=http://127.0.0.1:$PORT/size/1k

daemon_pid() { cat "$TMP/spliced.pid"; }
# gone PID: exited (a zombie too: the first process is our child, nobody reaps it before the end)
gone() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ -z $st || $st == Z* ]]
}

# map_entries PID: "maps=N nmaps=M": N entries in the hash and sockhash maps whose fds PID holds
# (/proc/PID/fdinfo: map_id), M maps, and the pinned spliced_conns
map_entries() {
	[[ $EUID -eq 0 && -e $PIN/spliced_conns ]] || {
		echo "maps=n/a nmaps=0"
		return
	}
	"$PYTHON" -c '
import glob, json, re, subprocess, sys
pid, pin = sys.argv[1], sys.argv[2]
def bpftool(*args):
    out = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True)
    try:
        return json.loads(out.stdout or "null")
    except ValueError:
        return None
ids = set()
for f in glob.glob("/proc/%s/fdinfo/*" % pid):  # the map fds the daemon holds
    try:
        m = re.search(r"^map_id:\s*(\d+)", open(f).read(), re.M)
    except OSError:
        continue
    if m:
        ids.add(m.group(1))
total, seen = 0, set()
for i in sorted(ids):
    m = bpftool("map", "show", "id", i)
    if not m or m.get("type") not in ("hash", "sockhash"):
        continue
    seen.add(m.get("name"))
    total += len(bpftool("map", "dump", "id", i) or [])
if "spliced_conns" not in seen:
    seen.add("spliced_conns")
    total += len(bpftool("map", "dump", "pinned", pin + "/spliced_conns") or [])
print("maps=%d nmaps=%d" % (total, len(seen)))' "$1" "$PIN"
}

# snapshot NAME: "pid=N fds=N rss_kb=N threads=N conns=N maps=N nmaps=N" of the current daemon
# process; the kinds of its descriptors go to $TMP/fds.NAME
snapshot() {
	local pid fds rss thr conns
	pid=$(daemon_pid)
	fds=$(ls "/proc/$pid/fd" | wc -l)
	# what the descriptors are (sockets and pipes by kind, not inode), for a diff on failure
	for f in /proc/"$pid"/fd/*; do
		readlink "$f" | sed -E 's/(socket|pipe|anon_inode):\[?[0-9]+\]?/\1/'
	done 2>/dev/null | sort | uniq -c >"$TMP/fds.$1"
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	thr=$(ls "/proc/$pid/task" | wc -l)
	conns=$("${CTL[@]}" -j show connections | "$PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)))')
	echo "pid=$pid fds=$fds rss_kb=$rss threads=$thr conns=$conns $(map_entries "$pid")"
}
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# wrk_run SECONDS: one chunk; prints "requests errors rps"
wrk_run() {
	local out=$TMP/wrk.out req sock n2 rps
	timeout $(($1 + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$1s" -H 'Connection: close' \
		"$URL" >"$out" 2>&1
	req=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$out")
	sock=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$out" |
		awk '{ print $1 + $2 + $3 + $4 }')
	n2=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$out")
	rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")
	if [[ -z $req ]]; then
		echo "0 1 0"
		sed 's/^/    wrk: /' "$out" >&2
		return
	fi
	echo "$req $((${sock:-0} + ${n2:-0})) ${rps%.*}"
}

say "spliced pid $(daemon_pid), listener :$PORT, origins :$O1 :$O2; warm-up"
read -r wreq werr wrps < <(wrk_run 5)
sleep 4 # parked upstream connections time out (keepalive_timeout 2s)
BASE=$(snapshot base)
say "baseline after $wreq warm-up connections ($wrps/s, $werr errors): $BASE"
RSS_PEAK=$(field rss_kb "$BASE")

# reloads and upgrades spread over the estimated duration of the load
est=$((CONNS / (wrps > 0 ? wrps : 1)))
gap_ms=$((est * 1000 / (RELOADS + UPGRADES + 1)))
((gap_ms < 200)) && gap_ms=200
say "about ${est} s of load expected: a reload or an upgrade every $((gap_ms / 1000)).$((gap_ms % 1000 / 100)) s"
ops() {
	local i r=0 u=0 errs=0 old new k
	local every=$(((RELOADS + UPGRADES) / (UPGRADES > 0 ? UPGRADES + 1 : 1)))
	for ((i = 1; i <= RELOADS + UPGRADES; i++)); do
		sleep "$((gap_ms / 1000)).$(printf '%03d' $((gap_ms % 1000)))"
		if ((u < UPGRADES && i % every == 0)); then
			old=$(daemon_pid)
			kill -USR2 "$old"
			new=$old
			for ((k = 0; k < 600; k++)); do # 60 s
				new=$(daemon_pid)
				[[ $new != "$old" ]] && gone "$old" && break
				sleep 0.1
			done
			if [[ $new == "$old" ]] || ! gone "$old"; then
				echo "upgrade $((u + 1)) did not complete (old $old, new $new)"
				errs=$((errs + 1))
			else
				echo "upgrade $((u + 1)): $old -> $new"
			fi
			u=$((u + 1))
		elif ((r < RELOADS)); then
			r=$((r + 1))
			write_conf $((1 + r % 2))
			if ! "${CTL[@]}" reload >/dev/null 2>"$TMP/reload.err"; then
				echo "reload $r failed: $(cat "$TMP/reload.err")"
				errs=$((errs + 1))
			fi
		fi
	done
	echo "ops done: $r reloads, $u upgrades, $errs errors"
}
ops >"$TMP/ops.log" 2>&1 &
OPS=$!
PIDS+=("$OPS")

# beside the short connections, WebSocket tunnels one after the other (256 KiB echoed each):
# tunnels take the kernel data path, so the BPF maps see insertions and removals throughout
tunnels() {
	local n=0 bad=0
	while [[ ! -e $TMP/load.done ]]; do
		if timeout 60 "$PYTHON" tests/kern/tunnel_client.py 127.0.0.1 "$PORT" --bytes 256k \
			--seed $((n + 1)) --timeout 30 >"$TMP/tunnel.out" 2>&1 &&
			grep -q '^result=ok' "$TMP/tunnel.out"; then
			n=$((n + 1))
		else
			bad=$((bad + 1))
			sed 's/^/    tunnel: /' "$TMP/tunnel.out" | head -n 3
		fi
	done
	echo "tunnels: $n ok, $bad failed"
}
tunnels >"$TMP/tunnels.log" 2>&1 &
TUN=$!
PIDS+=("$TUN")

total=0 errors=0 chunks=0
while :; do
	if ((total >= CONNS)) && ! kill -0 "$OPS" 2>/dev/null; then
		break
	fi
	if (($(elapsed) > LIMIT)); then
		say "time bound SOAK_TIMEOUT=$LIMIT s reached"
		errors=$((errors + 1))
		break
	fi
	read -r req err rps < <(wrk_run "$CHUNK")
	total=$((total + req))
	errors=$((errors + err))
	chunks=$((chunks + 1))
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$(daemon_pid)/status" 2>/dev/null)
	((${rss:-0} > RSS_PEAK)) && RSS_PEAK=$rss
	say "chunk $chunks: $req connections ($rps/s), $err errors; total $total; rss ${rss:-?} KiB; $(grep -c . "$TMP/ops.log") ops lines"
done
wait "$OPS" 2>/dev/null
touch "$TMP/load.done"
wait "$TUN" 2>/dev/null
sed 's/^/    /' "$TMP/ops.log" "$TMP/tunnels.log"
tun_line=$(tail -n 1 "$TMP/tunnels.log")
tun_ok=$(sed -n 's/^tunnels: \([0-9]*\) ok.*/\1/p' <<<"$tun_line")
tun_bad=$(sed -n 's/.* ok, \([0-9]*\) failed$/\1/p' <<<"$tun_line")
ops_line=$(tail -n 1 "$TMP/ops.log")
ops_err=$(sed -n 's/.*, \([0-9]*\) errors$/\1/p' <<<"$ops_line")
reloads_done=$(sed -n 's/^ops done: \([0-9]*\) reloads.*/\1/p' <<<"$ops_line")
upgrades_done=$(sed -n 's/.* \([0-9]*\) upgrades.*/\1/p' <<<"$ops_line")

sleep 4
FINAL=$(snapshot final)
say "after: $FINAL"
# the verdict's counters live in a pinned map: they span the upgrades
say "kernel path: $("${CTL[@]}" show stats | awk '$1 == "bytes_kernel_down" || $1 == "kernel.redirect_bytes" || $1 == "kernel.redirect_skbs" { printf "%s %s  ", $1, $2 }')"

fail=0
check() { # WHAT OK(0/1) DETAIL
	if [[ $2 == 1 ]]; then printf '  ok      %s: %s\n' "$1" "$3"; else
		printf '  FAILED  %s: %s\n' "$1" "$3"
		fail=1
	fi
}
bf=$(field fds "$BASE") ff=$(field fds "$FINAL")
br=$(field rss_kb "$BASE") fr=$(field rss_kb "$FINAL")
bm=$(field maps "$BASE") fm=$(field maps "$FINAL")
fc=$(field conns "$FINAL")
echo "soak summary ($(elapsed) s, $("$TMP/spliced" -V 2>&1 | head -n1)):"
check "connections" $((total >= CONNS)) "$total short connections (target $CONNS) in $chunks wrk runs"
check "errors" $((errors == 0 && ${ops_err:-1} == 0)) "load $errors (socket errors + non-2xx), reloads/upgrades ${ops_err:-?}"
check "tunnels" $((${tun_ok:-0} > 0 && ${tun_bad:-1} == 0)) "${tun_ok:-0} WebSocket tunnels of 256 KiB echoed, ${tun_bad:-?} failed"
check "reloads" $((${reloads_done:-0} == RELOADS)) "${reloads_done:-0} of $RELOADS"
check "upgrades" $((${upgrades_done:-0} == UPGRADES)) "${upgrades_done:-0} of $UPGRADES"
check "file descriptors" $((ff <= bf)) "$bf -> $ff"
((ff <= bf)) || diff "$TMP/fds.base" "$TMP/fds.final" | sed 's/^/            /'
check "RSS" $((fr <= br + RSS_SLACK_MB * 1024)) "$br -> $fr KiB (peak $RSS_PEAK KiB, bound baseline + $RSS_SLACK_MB MiB)"
if [[ $bm == n/a || $fm == n/a ]]; then
	check "BPF map entries" 1 "n/a (needs root and bpffs)"
else
	check "BPF map entries" $((fm <= bm)) "$bm -> $fm (in $(field nmaps "$FINAL") maps)"
fi
check "connection tables" $((fc == 0)) "$fc connections listed"
exit $fail
