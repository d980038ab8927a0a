#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh - benchmark spliced against the same origin reached directly, through HAProxy and
# through nginx, in one run, and write docs/benchmarks.md.
#
#   tools/bench/run.sh [--quick] [--haproxy-tcp] [--out FILE] [--keep-tmp]
#
#   --quick        1 repetition, shorter loads and transfers (development; < 2 minutes)
#   --haproxy-tcp  also measure HAProxy in mode tcp (adds ~20% run time)
#   --out FILE     write the report there instead of docs/benchmarks.md
#   --keep-tmp     keep the temporary directory (configs, logs, raw results)
#
# Environment: SPLICED_BIN, ORIGIN_BIN override the binaries (default .output/...). They are
# copied into the temporary directory at start, so a concurrent rebuild cannot change them in
# the middle of a run.
#
# Every process this script starts is tracked by PID and stopped on exit, error or Ctrl-C.
# Every load is bounded in time (timeout(1) around each client, --max-time for curl).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR="$ROOT/tools/bench"
cd "$ROOT" || exit 1

QUICK=0
HAPROXY_TCP=0
KEEP_TMP=0
OUT="$ROOT/docs/benchmarks.md"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--haproxy-tcp) HAPROXY_TCP=1 ;;
	--keep-tmp) KEEP_TMP=1 ;;
	--out)
		[ $# -ge 2 ] || { echo "run.sh: --out needs a file" >&2; exit 2; }
		OUT=$2
		shift
		;;
	-h | --help)
		sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run.sh: unknown argument '$1' (try --help)" >&2
		exit 2
		;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	REPS=1 WRK_SECS=3 DL_SIZE=512m DL_BYTES=$((512 << 20)) UP_MIB=256 PP_COUNT=2000
else
	REPS=3 WRK_SECS=10 DL_SIZE=2g DL_BYTES=$((2 << 30)) UP_MIB=1024 PP_COUNT=2000
fi
UP_BYTES=$((UP_MIB << 20))
WRK_THREADS=2
WRK_CONNS=16
PP_WARMUP=200
TUNNEL_BYTES=100
WORKERS=2

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in curl wrk haproxy nginx python3 cc timeout taskset sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (make deps installs it)"
done

TMP=$(mktemp -d /tmp/spliced-bench.XXXXXX) || die "mktemp failed"
UPFILE=/dev/shm/spliced-bench-upload.$$
PIN_BASE=/sys/fs/bpf/spliced-bench-$$
declare -a PIDS=()        # every process we started (long-running ones)
declare -A TPID=()        # target -> PID of its server process
declare -A TPORT=()       # target -> port
declare -A TSTART_CMD=()  # target -> start function
declare -a PP_ARGS=()     # pingpong arguments after PORT, set by m_pingpong / m_tunnel
RESULTS=$TMP/results.tsv  # measurement target rep metric value
NOTES=$TMP/notes.tsv      # target measurement rep text
META=$TMP/meta.tsv        # key value
: >"$RESULTS"
: >"$NOTES"
: >"$META"

# ---- process tracking and cleanup ----

stop_pid() { # pid: TERM, wait up to 3 s, then KILL (with its direct children, e.g. nginx workers)
	local pid=$1 kids i k
	kill -0 "$pid" 2>/dev/null || return 0
	kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null)
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
	fi
	for k in $kids; do
		kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null
	done
	wait "$pid" 2>/dev/null
	return 0
}

CLEANED=0
cleanup() {
	[ "$CLEANED" = 1 ] && return
	CLEANED=1
	local p
	for p in "${PIDS[@]}"; do
		stop_pid "$p"
	done
	rm -f "$UPFILE"
	# spliced unpins its maps when it stops; a killed one leaves them behind
	rm -f "$PIN_BASE"-*/spliced_* 2>/dev/null
	rmdir "$PIN_BASE"-* 2>/dev/null
	if [ "$KEEP_TMP" = 1 ]; then
		log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# run a client bounded in time, in our process group so Ctrl-C reaches it directly
bounded() { # seconds cmd...
	local secs=$1
	shift
	timeout --foreground -k 5 "$secs" "$@"
}

# ---- binaries (snapshot) ----

SPLICED_SRC=${SPLICED_BIN:-$ROOT/.output/spliced}
ORIGIN_SRC=${ORIGIN_BIN:-$ROOT/.output/tests/origin}
mkdir -p "$TMP/bin"
cp "$SPLICED_SRC" "$TMP/bin/spliced" || die "no spliced binary at $SPLICED_SRC (run make all)"
cp "$ORIGIN_SRC" "$TMP/bin/origin" || die "no origin binary at $ORIGIN_SRC (run make all)"
cc -O2 -Wall -o "$TMP/bin/pingpong" "$BENCH_DIR/pingpong.c" || die "cannot build pingpong.c"
SPLICED=$TMP/bin/spliced
SPLICED_BUILT=$(date -u -r "$SPLICED_SRC" '+%Y-%m-%d %H:%M:%S UTC')
ORIGIN=$TMP/bin/origin
PINGPONG=$TMP/bin/pingpong

git_desc() {
	local c d
	c=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null) || { echo unknown; return; }
	d=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
	[ "$d" -gt 0 ] && echo "$c + uncommitted changes in $d tracked files" || echo "$c"
}
GIT_AT_START=$(git_desc)

# ---- ports ----

read -r P_ORIGIN P_HAPROXY P_HAPROXY_TCP P_NGINX P_SPLICED P_NOSPLICE < <(python3 -c '
import socket
socks = []
for _ in range(6):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
')
[ -n "${P_NOSPLICE:-}" ] || die "cannot allocate ports"

TARGETS=(direct haproxy)
[ "$HAPROXY_TCP" = 1 ] && TARGETS+=(haproxy-tcp)
TARGETS+=(nginx spliced spliced-nosplice)
TPORT[direct]=$P_ORIGIN
TPORT[haproxy]=$P_HAPROXY
TPORT[haproxy-tcp]=$P_HAPROXY_TCP
TPORT[nginx]=$P_NGINX
TPORT[spliced]=$P_SPLICED
TPORT[spliced-nosplice]=$P_NOSPLICE

# ---- configurations ----

mkdir -p "$TMP/conf" "$TMP/log" "$TMP/nginx/tmp" "$TMP/out"

cat >"$TMP/conf/haproxy.cfg" <<EOF
global
    nbthread $WORKERS
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fe_http
    bind 127.0.0.1:$P_HAPROXY
    default_backend be_http

backend be_http
    http-reuse always
    server origin 127.0.0.1:$P_ORIGIN

frontend fe_tcp
    mode tcp
    bind 127.0.0.1:$P_HAPROXY_TCP
    default_backend be_tcp

backend be_tcp
    mode tcp
    server origin 127.0.0.1:$P_ORIGIN
EOF

cat >"$TMP/conf/nginx.conf" <<EOF
user root;
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log $TMP/log/nginx.error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;

    upstream origin {
        server 127.0.0.1:$P_ORIGIN;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            client_max_body_size 0;
        }
        location /ws {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 60s;
        }
    }
}
EOF

spliced_conf() { # file port pin
	cat >"$1" <<EOF
global { pin_path $3; access_log off; workers $WORKERS; }
listener web { bind 127.0.0.1:$2; route { pool p; } }
pool p { keepalive 64; server origin 127.0.0.1:$P_ORIGIN; }
EOF
}
spliced_conf "$TMP/conf/spliced.conf" "$P_SPLICED" "$PIN_BASE-splice"
spliced_conf "$TMP/conf/spliced-nosplice.conf" "$P_NOSPLICE" "$PIN_BASE-nosplice"

# ---- start / stop / health ----

RESTARTS=0
start_bg() { # name cmd...: start a long-running server, record its PID
	local name=$1
	shift
	"$@" >>"$TMP/log/$name.log" 2>&1 </dev/null &
	local pid=$!
	PIDS+=("$pid")
	TPID[$name]=$pid
}

start_origin() { start_bg direct "$ORIGIN" -p "$P_ORIGIN" -n bench; }
start_haproxy() {
	start_bg haproxy haproxy -f "$TMP/conf/haproxy.cfg" -db
	TPID[haproxy-tcp]=${TPID[haproxy]}
}
start_nginx() { start_bg nginx nginx -c "$TMP/conf/nginx.conf" -p "$TMP/nginx" -e "$TMP/log/nginx.error.log" -g 'daemon off;'; }
start_spliced() { start_bg spliced "$SPLICED" -d -f "$TMP/conf/spliced.conf"; }
start_spliced_nosplice() { start_bg spliced-nosplice "$SPLICED" -d -f "$TMP/conf/spliced-nosplice.conf" --no-splice; }
TSTART_CMD[direct]=start_origin
TSTART_CMD[haproxy]=start_haproxy
TSTART_CMD[haproxy-tcp]=start_haproxy
TSTART_CMD[nginx]=start_nginx
TSTART_CMD[spliced]=start_spliced
TSTART_CMD[spliced-nosplice]=start_spliced_nosplice

logname() { case "$1" in haproxy-tcp) echo haproxy ;; *) echo "$1" ;; esac; }

wait_ready() { # target: until GET / answers 200 "bench", at most 10 s
	local t=$1 i
	for i in $(seq 100); do
		if [ "$(curl -s --max-time 1 "http://127.0.0.1:${TPORT[$t]}/" 2>/dev/null)" = bench ]; then
			return 0
		fi
		kill -0 "${TPID[$t]}" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

note() { # target measurement rep text
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$NOTES"
	log "NOTE $1 $2 run $3: $4"
}

# Before each measurement: is the target's process still alive and answering? If not, record
# it (with the tail of its log) and restart it, so one crash does not void the whole run.
EXIT_HOW=""
exit_how() { # pid of a dead child -> EXIT_HOW (in this shell: wait only works here)
	local st
	wait "$1" 2>/dev/null
	st=$?
	if [ "$st" -gt 128 ]; then
		EXIT_HOW="was killed by SIG$(kill -l $((st - 128)) 2>/dev/null || echo $((st - 128)))"
	else
		EXIT_HOW="exited with status $st"
	fi
}

ensure_alive() { # target measurement rep
	local t=$1 m=$2 r=$3 lname
	lname=$(logname "$t")
	if kill -0 "${TPID[$t]}" 2>/dev/null && wait_ready "$t"; then
		return 0
	fi
	local why="not answering"
	if ! kill -0 "${TPID[$t]}" 2>/dev/null; then
		exit_how "${TPID[$t]}"
		why="process ${TPID[$t]} $EXIT_HOW"
	fi
	note "$t" "$m" "$r" "$why before this measurement (after ${LAST_MEAS[$t]:-start}); log tail: $(tail -n 3 "$TMP/log/$lname.log" | tr '\n\t' '  ')"
	stop_pid "${TPID[$t]}"
	RESTARTS=$((RESTARTS + 1))
	${TSTART_CMD[$t]}
	wait_ready "$t" || { note "$t" "$m" "$r" "restart failed"; return 1; }
	return 0
}
declare -A LAST_MEAS=()

# ---- measurements ----

result() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"; }

machine_ticks() { # user + system + softirq of all CPUs, and steal
	awk '/^cpu /{ print $2 + $4 + $8, $9 }' /proc/stat
}
proc_ticks() { # utime+stime of the target's processes (nginx: master + workers)
	local pid=$1 p sum=0 kids
	kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null)
	for p in "$pid" $kids; do
		[ -r /proc/"$p"/stat ] || continue
		sum=$((sum + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat)))
	done
	echo "$sum"
}
HZ=$(getconf CLK_TCK)

# CPU busy share of the whole machine over 2 s while this script is idle: what else runs here
background_busy() {
	local a b
	a=$(awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 2
	b=$(awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	python3 -c "a='$a'.split(); b='$b'.split(); print('%.0f%%' % (100.0 * (int(b[0]) - int(a[0])) / max(1, int(b[1]) - int(a[1]))))"
}

# shared by download and upload: machine and proxy CPU seconds per GiB
record_cpu() { # measurement target rep bytes m0 m1 s0 s1 p0 p1
	local m=$1 t=$2 r=$3 bytes=$4
	result "$m" "$t" "$r" cpu_machine "$(python3 -c "print(($6-$5)/$HZ/($bytes/2**30))")"
	result "$m" "$t" "$r" steal_s "$(python3 -c "print(($8-$7)/$HZ)")"
	if [ "$t" != direct ]; then
		result "$m" "$t" "$r" cpu_proxy "$(python3 -c "print((${10}-$9)/$HZ/($bytes/2**30))")"
	fi
}

m_download() { # target rep
	local t=$1 r=$2 url out code size secs m0 s0 m1 s1 p0 p1
	url="http://127.0.0.1:${TPORT[$t]}/size/$DL_SIZE"
	read -r m0 s0 < <(machine_ticks)
	p0=$(proc_ticks "${TPID[$t]}")
	out=$(bounded 100 curl -sS -o /dev/null --max-time 90 --speed-limit 1000000 --speed-time 5 -w '%{http_code} %{size_download} %{time_total}' "$url" 2>"$TMP/out/curl.err")
	read -r m1 s1 < <(machine_ticks)
	p1=$(proc_ticks "${TPID[$t]}")
	read -r code size secs <<<"$out"
	if [ "${code:-}" != 200 ] || [ "${size:-0}" != "$DL_BYTES" ]; then
		note "$t" download "$r" "GET /size/$DL_SIZE failed: status ${code:-none}, $size of $DL_BYTES bytes, $(tr '\n' ' ' <"$TMP/out/curl.err")"
		result download "$t" "$r" gbps FAIL
		return
	fi
	result download "$t" "$r" gbps "$(python3 -c "print($size/$secs/1e9)")"
	record_cpu download "$t" "$r" "$size" "$m0" "$m1" "$s0" "$s1" "$p0" "$p1"
}

m_upload() { # target rep
	local t=$1 r=$2 url out code size secs m0 s0 m1 s1 p0 p1 body
	url="http://127.0.0.1:${TPORT[$t]}/upload"
	read -r m0 s0 < <(machine_ticks)
	p0=$(proc_ticks "${TPID[$t]}")
	rm -f "$TMP/out/upload.body" # curl -o leaves an old file alone when nothing arrives
	# 'Expect:' (empty) stops curl from waiting for 100 Continue: this measures the data path
	out=$(bounded 100 curl -sS -T "$UPFILE" -H 'Expect:' -o "$TMP/out/upload.body" --max-time 90 --speed-limit 1000000 --speed-time 5 -w '%{http_code} %{size_upload} %{time_total}' "$url" 2>"$TMP/out/curl.err")
	read -r m1 s1 < <(machine_ticks)
	p1=$(proc_ticks "${TPID[$t]}")
	read -r code size secs <<<"$out"
	body=$(cat "$TMP/out/upload.body" 2>/dev/null)
	if [ "${code:-}" != 200 ] || [ "$body" != "$UP_SHA $UP_BYTES" ]; then
		note "$t" upload "$r" "PUT /upload failed: status ${code:-none}, sent ${size:-0} of $UP_BYTES, answer '${body:0:80}', $(tr '\n' ' ' <"$TMP/out/curl.err")"
		result upload "$t" "$r" gbps FAIL
		return
	fi
	result upload "$t" "$r" gbps "$(python3 -c "print($size/$secs/1e9)")"
	record_cpu upload "$t" "$r" "$size" "$m0" "$m1" "$s0" "$s1" "$p0" "$p1"
}

# parse wrk output: "rps p99_us errors non2xx"
parse_wrk() {
	python3 - "$1" <<'EOF'
import re, sys
txt = open(sys.argv[1]).read()
def us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]
rps = re.search(r"Requests/sec:\s+([\d.]+)", txt)
p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", txt, re.M)
se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
total = re.search(r"(\d+) requests in", txt)
errs = sum(int(x) for x in se.groups()) if se else 0
print(rps.group(1) if rps else "FAIL",
      us(*p99.groups()) if p99 else "NA",
      errs, n2.group(1) if n2 else 0, total.group(1) if total else 0,
      "connect=%s,read=%s,write=%s,timeout=%s" % se.groups() if se else "none")
EOF
}

m_wrk() { # measurement target rep extra-args...
	local m=$1 t=$2 r=$3 rps p99 errs n2 total detail f
	shift 3
	f="$TMP/out/wrk.$m.$t.$r.txt"
	bounded $((WRK_SECS + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WRK_SECS}s" --latency "$@" \
		"http://127.0.0.1:${TPORT[$t]}/" >"$f" 2>&1
	read -r rps p99 errs n2 total detail < <(parse_wrk "$f")
	result "$m" "$t" "$r" rps "$rps"
	[ "$m" = keepalive ] && result "$m" "$t" "$r" p99_us "$p99"
	result "$m" "$t" "$r" errors "$((errs + n2))"
	result "$m" "$t" "$r" requests "$total"
	if [ "$rps" = FAIL ] || [ "$errs" != 0 ] || [ "$n2" != 0 ]; then
		note "$t" "$m" "$r" "wrk: $total requests, socket errors $detail, non-2xx $n2$( [ "$rps" = FAIL ] && printf ', output: %s' "$(tr '\n' ' ' <"$f" | cut -c1-200)")"
	fi
}
m_keepalive() { m_wrk keepalive "$1" "$2"; }
m_close() { m_wrk close "$1" "$2" -H 'Connection: close'; }

# Ping-pong latency on a VM is bimodal: ~7 us when client and server share a CPU, ~70 us when
# a wake-up has to cross to the other vCPU, with the scheduler choosing at random. So it is
# measured twice: "one CPU" pins the client, the origin and the proxy (all threads) to CPU 0
# for the duration, which gives a stable per-round-trip path length; "free" lets the
# scheduler place everything, as in the other measurements.
ALL_CPUS=""
pin_target() { # target cpulist: set the CPU affinity of the origin and the target's processes
	local t=$1 cpus=$2 p kids
	for p in "${TPID[direct]}" "${TPID[$t]}"; do
		kids=$(cat /proc/"$p"/task/*/children 2>/dev/null)
		for k in "$p" $kids; do
			taskset -a -p -c "$cpus" "$k" >/dev/null 2>&1
		done
	done
}
# PP_ARGS: the pingpong arguments after PORT (path, count, warm-up, tunnel bytes); set by the
# m_ function that calls run_pingpong
run_pingpong() { # measurement target rep kind [taskset args...]
	local m=$1 t=$2 r=$3 kind=$4 out med p99 mn mx n
	shift 4
	out=$(bounded 60 "$@" "$PINGPONG" 127.0.0.1 "${TPORT[$t]}" "${PP_ARGS[@]}" 2>"$TMP/out/pp.err")
	read -r med p99 mn mx n <<<"$out"
	if [ -z "${n:-}" ]; then
		note "$t" "$m" "$r" "pingpong ${PP_ARGS[*]} ($kind) failed: $(tr '\n' ' ' <"$TMP/out/pp.err")"
		result "$m" "$t" "$r" "${kind}_median_us" FAIL
		return
	fi
	result "$m" "$t" "$r" "${kind}_median_us" "$med"
	result "$m" "$t" "$r" "${kind}_p99_us" "$p99"
}
pingpong_both() { # measurement target rep: the one-CPU variant (when there are several CPUs), then free
	local m=$1 t=$2 r=$3
	if [ -n "$ALL_CPUS" ]; then
		pin_target "$t" 0
		run_pingpong "$m" "$t" "$r" onecpu taskset -c 0
		pin_target "$t" "$ALL_CPUS"
	fi
	run_pingpong "$m" "$t" "$r" free
}
m_pingpong() { # target rep: keep-alive GET / round trips
	PP_ARGS=(/ "$PP_COUNT" "$PP_WARMUP")
	pingpong_both pingpong "$1" "$2"
}
# tunnel: WebSocket upgrade on /ws (the origin answers 101 and echoes), then TUNNEL_BYTES
# out and back per round trip; spliced carries the tunnel on its kernel path
m_tunnel() { # target rep
	PP_ARGS=(/ws "$PP_COUNT" "$PP_WARMUP" "$TUNNEL_BYTES")
	pingpong_both tunnel "$1" "$2"
}

# ---- functional probes (once per target, before the loads) ----

PROBE_UPLOADS=20
probe() { # target -> probes.tsv: target, download check, upload checks, 100-continue delay
	local t=$1 port=${TPORT[$1]} dl up exp i ok=0 fails="" out
	dl=$(bounded 30 curl -s --max-time 20 "http://127.0.0.1:$port/size/64m" | sha256sum | cut -d' ' -f1)
	[ "$dl" = "$DL64_SHA" ] && dl=ok || dl=MISMATCH
	# several uploads: a stall that hits one request in twenty must not slip through
	for i in $(seq "$PROBE_UPLOADS"); do
		out=$(bounded 10 curl -sS --max-time 3 -H 'Expect:' -T "$TMP/probe.bin" -w ' %{http_code}' "http://127.0.0.1:$port/upload" 2>&1)
		if [ "$out" = "$PROBE_SHA $((8 << 20))"$'\n'" 200" ]; then
			ok=$((ok + 1))
		else
			fails="$fails; #$i: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-100)"
		fi
	done
	up="$ok/$PROBE_UPLOADS ok"
	[ -n "$fails" ] && note "$t" probe - "8 MiB uploads with a 3 s limit: $up${fails}"
	# how long until the proxy relays the origin's 100 Continue (curl would wait 1 s for it)
	exp=$(bounded 10 python3 - "$port" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"PUT /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
t0 = time.monotonic()
try:
    d = s.recv(4096)
    ms = (time.monotonic() - t0) * 1e3
    print("%.1f" % ms if d.startswith(b"HTTP/1.1 100") else "no-100(%s)" % d[:12].decode(errors="replace").replace(" ", "_"))
except socket.timeout:
    print("none-in-3s")
EOF
)
	printf '%s\t%s\t%s\t%s\n' "$t" "$dl" "$up" "${exp:-error}" >>"$TMP/probes.tsv"
}

# ---- run ----

T_START=$(date +%s)
log "temp dir $TMP; ports origin $P_ORIGIN haproxy $P_HAPROXY nginx $P_NGINX spliced $P_SPLICED/$P_NOSPLICE"
start_origin
wait_ready direct || die "origin did not start: $(cat "$TMP/log/direct.log")"
start_haproxy
start_nginx
start_spliced
start_spliced_nosplice
for t in "${TARGETS[@]}"; do
	wait_ready "$t" || die "$t did not start: $(tail -n 5 "$TMP/log/$(logname "$t").log")"
done
log "all targets answer"

log "preparing the ${UP_MIB} MiB upload file in /dev/shm"
bounded 60 curl -s --max-time 50 -o "$UPFILE" "http://127.0.0.1:$P_ORIGIN/size/${UP_MIB}m" || die "cannot create $UPFILE"
UP_SHA=$(sha256sum "$UPFILE" | cut -d' ' -f1)
head -c $((8 << 20)) /dev/urandom >"$TMP/probe.bin"
PROBE_SHA=$(sha256sum "$TMP/probe.bin" | cut -d' ' -f1)
DL64_SHA=$(curl -s "http://127.0.0.1:$P_ORIGIN/size/64m" | sha256sum | cut -d' ' -f1)

# the ping-pong client runs on the last CPU; the servers float (2 vCPUs only)
NCPU=$(nproc)
[ "$NCPU" -gt 1 ] && ALL_CPUS="0-$((NCPU - 1))"

: >"$TMP/probes.tsv"
for t in "${TARGETS[@]}"; do
	probe "$t"
done

{
	printf 'load_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'busy_start\t%s\n' "$(background_busy)"
} >>"$META"
BUSY=$(awk -F'\t' '$1 == "busy_start" { print $2 + 0 }' "$META")
[ "$BUSY" -gt 20 ] && log "warning: the machine is already ${BUSY}% busy without this benchmark; numbers will be noisy"

MEASUREMENTS=(download upload pingpong tunnel keepalive close)
for r in $(seq "$REPS"); do
	for m in "${MEASUREMENTS[@]}"; do
		for t in "${TARGETS[@]}"; do
			ensure_alive "$t" "$m" "$r" || { result "$m" "$t" "$r" skipped FAIL; continue; }
			# the origin serves every target: it must be alive too
			[ "$t" = direct ] || ensure_alive direct "$m" "$r" || die "origin is gone"
			log "run $r/$REPS $m via $t"
			"m_$m" "$t" "$r"
			LAST_MEAS[$t]="$m run $r"
			sleep 0.2
		done
	done
done
# a crash during the last measurement would otherwise go unnoticed
for t in "${TARGETS[@]}"; do
	if ! kill -0 "${TPID[$t]}" 2>/dev/null; then
		exit_how "${TPID[$t]}"
		note "$t" end - "process ${TPID[$t]} $EXIT_HOW during ${LAST_MEAS[$t]:-?}; log tail: $(tail -n 3 "$TMP/log/$(logname "$t").log" | tr '\n\t' '  ')"
	fi
done
T_END=$(date +%s)

# ---- metadata and report ----

{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'mode\t%s\n' "$([ "$QUICK" = 1 ] && echo quick || echo full)"
	printf 'reps\t%s\n' "$REPS"
	printf 'wrk_secs\t%s\n' "$WRK_SECS"
	printf 'dl_size\t%s\n' "$DL_SIZE"
	printf 'dl_bytes\t%s\n' "$DL_BYTES"
	printf 'up_mib\t%s\n' "$UP_MIB"
	printf 'pp_count\t%s\n' "$PP_COUNT"
	printf 'pp_warmup\t%s\n' "$PP_WARMUP"
	printf 'tunnel_bytes\t%s\n' "$TUNNEL_BYTES"
	printf 'pp_onecpu\t%s\n' "$([ -n "$ALL_CPUS" ] && echo yes || echo no)"
	printf 'wrk_threads\t%s\n' "$WRK_THREADS"
	printf 'wrk_conns\t%s\n' "$WRK_CONNS"
	printf 'workers\t%s\n' "$WORKERS"
	printf 'runtime_s\t%s\n' "$((T_END - T_START))"
	printf 'restarts\t%s\n' "$RESTARTS"
	printf 'load_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'busy_end\t%s\n' "$(background_busy)"
	printf 'nproc\t%s\n' "$NCPU"
	printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
	printf 'mem\t%s\n' "$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	printf 'kernel\t%s\n' "$(uname -sr)"
	printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
	printf 'git\t%s\n' "$GIT_AT_START"
	printf 'spliced_built\t%s\n' "$SPLICED_BUILT"
	printf 'spliced_version\t%s\n' "$("$SPLICED" -V 2>&1 | head -n1)"
	printf 'spliced_sha\t%s\n' "$(sha256sum "$SPLICED" | cut -c1-16)"
	printf 'haproxy_version\t%s\n' "$(haproxy -v 2>&1 | head -n1 | sed 's/ - https.*//')"
	printf 'nginx_version\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
	printf 'wrk_version\t%s\n' "$(wrk -v 2>&1 | head -n1 | sed 's/ \[.*//')"
	printf 'curl_version\t%s\n' "$(curl --version | head -n1 | cut -d' ' -f1-2)"
	printf 'python_version\t%s\n' "$(python3 --version 2>&1)"
	printf 'cc_version\t%s\n' "$(cc --version | head -n1)"
	printf 'sysctl\t%s\n' "tcp_tw_reuse=$(cat /proc/sys/net/ipv4/tcp_tw_reuse) ip_local_port_range=$(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range) somaxconn=$(cat /proc/sys/net/core/somaxconn)"
	printf 'ports\t%s\n' "origin=$P_ORIGIN haproxy=$P_HAPROXY haproxy-tcp=$P_HAPROXY_TCP nginx=$P_NGINX spliced=$P_SPLICED spliced-nosplice=$P_NOSPLICE"
	printf 'targets\t%s\n' "${TARGETS[*]}"
} >>"$META"

mkdir -p "$(dirname "$OUT")"
# the TLS (tls.sh), slow-server (slow.sh) and rules (rules.sh) sections are
# measured separately: keep them across regenerations
if [ -f "$OUT" ]; then
	sed -n -e '/^<!-- TLS \(guest \)\{0,1\}section:/,/^<!-- end of TLS \(guest \)\{0,1\}section -->/p' \
		-e '/^<!-- slow server section:/,/^<!-- end of slow server section -->/p' \
		-e '/^<!-- rules section:/,/^<!-- end of rules section -->/p' "$OUT" \
		>"$TMP/tls-section.md"
fi
python3 "$BENCH_DIR/report.py" --tmp "$TMP" --out "$OUT" || die "report generation failed"
if [ -s "$TMP/tls-section.md" ]; then
	{
		echo
		cat "$TMP/tls-section.md"
	} >>"$OUT"
fi
log "wrote $OUT ($((T_END - T_START)) s of measurements)"
