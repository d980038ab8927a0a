#!/usr/bin/env bats
# health.bats - active health checks (HTTP and TCP), the transitions they log, traffic following
# the state, passive ejection, a backend killed under load, and the cost of 200 checked servers.

load helpers

# the python side of these tests, written once per file run:
#   switch FLAG     /health answers 500 while the file FLAG exists, else 200; anything else 200 NAME
#   hang            reads the request, never answers
#   garbage         reads the request, answers a line that is not HTTP, closes
#   status502       answers 502 NAME to everything
#   multi N         N ports answering 200; on SIGTERM writes "port requests" lines to LOG.counts
#   load - OUT PORT SECONDS RATE   GET /load/i on a new connection RATE times a second for
#                   SECONDS; one "status body" line per request in OUT
# Request logs: one "METHOD TARGET host=HOST ua=USER_AGENT" line per request.
setup_file() {
	PYBACK="$BATS_FILE_TMPDIR/health_backend.py"
	export PYBACK
	cat >"$PYBACK" <<'PY'
import os, selectors, signal, socket, sys, threading, time

mode, name, log = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
lock = threading.Lock()


def log_request(head):
    lines = head.decode("latin1").split("\r\n")
    hdr = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdr[k.strip().lower()] = v.strip()
    rl = lines[0].split(" ")
    with lock, open(log, "a") as f:
        f.write(f"{rl[0]} {rl[1] if len(rl) > 1 else '-'} host={hdr.get('host', '-')} "
                f"ua={hdr.get('user-agent', '-')}\n")
    return rl[1] if len(rl) > 1 else "/"


def response(status, body):
    reason = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
            f"X-Backend: {name}\r\nConnection: close\r\n\r\n{body}").encode()


def serve_one(c):
    try:
        c.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(65536)
            if not d:
                return
            head += d
        path = log_request(head)
        if mode == "hang":
            while c.recv(65536):
                pass
            return
        if mode == "garbage":
            c.sendall(b"garbage, not HTTP at all\r\n\r\n")
        elif mode == "status502":
            c.sendall(response(502, name + "\n"))
        elif path.startswith("/health") and os.path.exists(args[0]):
            c.sendall(response(500, "failing\n"))
        else:
            c.sendall(response(200, name + "\n"))
    except OSError:
        pass
    finally:
        c.close()


def listen():
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", 0))
    l.listen(1024)
    return l


def run_threaded():
    l = listen()
    print("ready", l.getsockname()[1], flush=True)
    while True:
        c, _ = l.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def run_multi(n):
    sel = selectors.DefaultSelector()
    counts = {}
    ls = [listen() for _ in range(n)]
    for l in ls:
        l.setblocking(False)
        port = l.getsockname()[1]
        counts[port] = 0
        sel.register(l, selectors.EVENT_READ, ("listen", port))

    def dump(*_):
        with open(log + ".counts.tmp", "w") as f:
            for port, k in counts.items():
                f.write(f"{port} {k}\n")
        os.rename(log + ".counts.tmp", log + ".counts")
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    print("ready", " ".join(str(l.getsockname()[1]) for l in ls), flush=True)
    bufs = {}
    while True:
        for key, _ in sel.select():
            kind, port = key.data
            if kind == "listen":
                try:
                    c, _ = key.fileobj.accept()
                except OSError:
                    continue
                c.setblocking(False)
                bufs[c] = b""
                sel.register(c, selectors.EVENT_READ, ("conn", port))
                continue
            c = key.fileobj
            try:
                d = c.recv(65536)
            except OSError:
                d = b""
            bufs[c] += d
            if d and b"\r\n\r\n" not in bufs[c]:
                continue
            if d:
                counts[port] += 1
                try:
                    c.send(response(200, "ok\n"))
                except OSError:
                    pass
            sel.unregister(c)
            del bufs[c]
            c.close()


def run_load(port, seconds, rate):
    import http.client
    out = open(log, "w")
    t0 = time.monotonic()
    i = 0
    while True:
        due = t0 + i / rate
        if due - t0 >= seconds:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", f"/load/{i}", headers={"Connection": "close"})
            r = c.getresponse()
            body = r.read().decode("latin1").strip() or "-"
            out.write(f"{r.status} {body}\n")
        except Exception as e:
            out.write(f"ERR {type(e).__name__}\n")
        finally:
            c.close()
        out.flush()
        i += 1


if mode == "multi":
    run_multi(int(args[0]))
elif mode == "load":
    run_load(int(args[0]), float(args[1]), float(args[2]))
else:
    run_threaded()
PY
}

# start_pyback NAME MODE [args]: the python backend of this file (see health_backend.py) on free
# loopback ports; PY_PORT (first port), PY_PORTS (all), request log in $(pyback_log NAME)
start_pyback() {
	local name=$1 mode=$2 out="$BATS_TEST_TMPDIR/py-$1.out"
	shift 2
	timeout 300 python3 "$PYBACK" "$mode" "$name" "$(pyback_log "$name")" "$@" \
		>"$out" 2>"$BATS_TEST_TMPDIR/py-$name.err" 3>&- &
	record_pid $! "py-$name"
	PYBACK_PIDS[$name]=$!
	wait_until 10 grep -q '^ready' "$out" || fail "python backend $name did not start"
	PY_PORTS=$(awk '/^ready/ { $1 = ""; print; exit }' "$out")
	read -r PY_PORT _ <<<"$PY_PORTS"
}
declare -gA PYBACK_PIDS=()

pyback_log() { echo "$BATS_TEST_TMPDIR/py-$1.log"; }

# log_has TEXT: the daemon's stderr has a line containing TEXT
log_has() { grep -qF -- "$1" "$SPLICED_ERR"; }

# count_bodies N: N requests on new connections; prints "count body" lines sorted by body
count_bodies() {
	"${CURL[@]}" -H 'Connection: close' "$(url "/r[1-$1]")" | sort | uniq -c |
		awk '{ print $1, $2 }'
}

count_of() { # NAME COUNTS
	awk -v n="$1" '$2 == n { print $1; f = 1 } END { if (!f) print 0 }' <<<"$2"
}

# proxied_requests LOG: request lines that are not health checks
proxied_requests() {
	if [[ -f $1 ]]; then grep -vc '^GET /health' "$1" || true; else echo 0; fi
}

@test "health: HTTP check answering 500 -> down after fall checks, no traffic; 200 -> up after rise" {
	start_origin good
	start_pyback sw switch "$BATS_TEST_TMPDIR/fail-flag"
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { health http /health interval 200ms timeout 500ms rise 2 fall 3;
	server sw 127.0.0.1:$PY_PORT; server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	run count_bodies 20
	echo "healthy: $output"
	assert_equal 10 "$(count_of sw "$output")" "requests to sw while healthy"

	touch "$BATS_TEST_TMPDIR/fail-flag"
	local t0 ms
	t0=$(now_ms)
	wait_until 5 log_has "pool p server sw: up -> down (status 500, 3 checks)" ||
		fail "no down transition logged"
	ms=$(($(now_ms) - t0))
	echo "down after $ms ms"
	# 3 checks 200 ms apart: the first within 200 ms of the flag, the third 400 ms later
	assert_between 300 "$ms" 1500 "time to down (ms)"

	local before
	before=$(proxied_requests "$(pyback_log sw)")
	run count_bodies 20
	echo "sw down: $output"
	assert_equal "20 good" "$output" "all requests to good while sw is down"
	assert_equal "$before" "$(proxied_requests "$(pyback_log sw)")" "requests that reached sw"

	rm -f "$BATS_TEST_TMPDIR/fail-flag"
	wait_until 5 log_has "pool p server sw: down -> up (status 200, 2 checks)" ||
		fail "no up transition logged"
	run count_bodies 20
	echo "sw up again: $output"
	assert_equal 10 "$(count_of sw "$output")" "requests to sw after it came back"
}

@test "health: TCP check against a closed port marks the server down; requests never wait for it" {
	local closed
	closed=$(free_port)
	start_origin good
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { health tcp interval 100ms fall 2; fail_timeout 50ms;
	server closed 127.0.0.1:$closed; server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	wait_until 5 log_has "pool p server closed: up -> down (refused, 2 checks)" ||
		fail "no down transition logged"
	: >"$SPLICED_ERR.mark"
	local fails_before
	fails_before=$(grep -c 'server closed: connect failed' "$SPLICED_ERR" || true)
	run count_bodies 30
	echo "$output"
	assert_equal "30 good" "$output"
	# with fail_timeout 50 ms, only the health state keeps requests away from the closed port
	assert_equal "$fails_before" "$(grep -c 'server closed: connect failed' "$SPLICED_ERR" || true)" \
		"connect attempts to the closed port after it went down"
}

@test "health: HTTP check with a timeout against a server that accepts and never answers" {
	start_origin good
	start_pyback hang hang
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { health http /health interval 300ms timeout 200ms fall 2;
	server hang 127.0.0.1:$PY_PORT; server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	local t0 ms
	t0=$(now_ms)
	wait_until 5 log_has "pool p server hang: up -> down (timeout, 2 checks)" ||
		fail "no down transition logged"
	ms=$(($(now_ms) - t0))
	echo "down after $ms ms"
	# the second check starts 300 ms after the first and gives up 200 ms later
	assert_between 400 "$ms" 2500 "time to down (ms)"
	# the hanging server did see the checks: connected, request sent, no answer
	grep -q '^GET /health' "$(pyback_log hang)" || fail "hang server saw no check request"
	run count_bodies 10
	assert_equal "10 good" "$output"
}

@test "health: HTTP check against a server that answers garbage -> bad response" {
	start_origin good
	start_pyback junk garbage
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { health http /health interval 100ms timeout 500ms fall 2;
	server junk 127.0.0.1:$PY_PORT; server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	wait_until 5 log_has "pool p server junk: up -> down (bad response, 2 checks)" ||
		fail "no down transition logged"
	run count_bodies 10
	assert_equal "10 good" "$output"
}

@test "health: status range, Host header and a server that starts in maintenance" {
	start_origin a
	start_origin b
	start_pyback sw switch "$BATS_TEST_TMPDIR/no-such-flag"
	# 302 is fine by default (200-399) but outside 200-299
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } route { pool q; } }
pool p { health http /status/302 interval 100ms fall 2 status 200-299;
	server a 127.0.0.1:${ORIGIN_PORTS[a]}; server b 127.0.0.1:${ORIGIN_PORTS[b]} maintenance; }
pool q { health http /health host checks.example interval 100ms;
	server sw 127.0.0.1:$PY_PORT; }"
	wait_until 5 log_has "pool p server a: up -> down (status 302, 2 checks)" ||
		fail "302 outside the status range did not take a down"
	# b starts in maintenance and is never checked
	sleep 0.5
	grep -q 'GET /status/302' "$(origin_log b)" 2>/dev/null && fail "maintenance server was checked"
	log_has "server b: " && fail "maintenance server changed state"
	# the Host header of the checks
	wait_until 5 grep -q 'host=checks.example' "$(pyback_log sw)" ||
		fail "check without the configured Host header: $(tail -3 "$(pyback_log sw)")"
	grep -q 'ua=spliced-health' "$(pyback_log sw)" || fail "check User-Agent"
	# pool p has nothing usable: 503
	assert_equal 503 "$(http_code "$(url /)")"
}

@test "health: passive ejection after consecutive 5xx, back after the ejection time (needs conn.c wiring)" {
	start_origin good
	start_pyback bad status502
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { eject consecutive_failures 3 base 2s max 10s; max_ejection_percent 50;
	server bad 127.0.0.1:$PY_PORT; server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	# round robin: bad answers requests 1, 3, 5 with 502, then it is ejected
	run count_bodies 20
	echo "$output"
	assert_equal 3 "$(proxied_requests "$(pyback_log bad)")" "requests that reached bad"
	assert_equal "17 good" "$(grep good <<<"$output")" "requests answered by good"
	wait_until 2 log_has "pool p server bad: up -> ejected (passive: 3 consecutive failures" ||
		fail "no ejection logged"
	wait_until 4 log_has "pool p server bad: ejected -> up (ejection ended)" ||
		fail "ejection did not end"
	run count_bodies 4
	echo "$output"
	[[ $(proxied_requests "$(pyback_log bad)") -gt 3 ]] || fail "bad got no traffic after its ejection"
}

@test "health: a backend killed during 20 s of load at 50 req/s: no failed request, out within fall x interval" {
	start_origin a
	start_origin b
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { health http /status/200 interval 500ms timeout 300ms rise 2 fall 2; fail_timeout 100ms;
	server a 127.0.0.1:${ORIGIN_PORTS[a]}; server b 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	local load="$BATS_TEST_TMPDIR/load.out" loadpid t_kill t_down dt fails_down fails_end
	timeout 40 python3 "$PYBACK" load - "$load" "$SPLICED_PORT" 20 50 3>&- &
	loadpid=$!
	record_pid "$loadpid" load
	sleep 5
	kill -KILL "${ORIGIN_PIDS[b]}"
	t_kill=$(now_ms)
	wait_until 5 log_has "pool p server b: up -> down" || fail "no down transition for b"
	t_down=$(now_ms)
	dt=$((t_down - t_kill))
	echo "b down $dt ms after the kill (fall x interval = 1000 ms)" >&3
	grep 'server b: up -> down' "$SPLICED_ERR"
	# the next check comes within one interval, the fall-th one (fall - 1) intervals later:
	# fall x interval; the slack is for this polling loop on a busy machine
	assert_between 0 "$dt" 2000 "kill -> down (ms)"
	sleep 0.3
	fails_down=$(grep -c 'server b: connect failed' "$SPLICED_ERR" || true)
	wait "$loadpid" || fail "load generator failed"
	fails_end=$(grep -c 'server b: connect failed' "$SPLICED_ERR" || true)
	echo "connect failures to b: $fails_down at down, $fails_end at the end" >&3
	assert_equal "$fails_down" "$fails_end" "connections tried to b after it went down"
	local total bad
	total=$(wc -l <"$load")
	bad=$(awk '$1 != 200' "$load" | wc -l)
	awk '$1 != 200' "$load" | head -5
	echo "load: $total requests, $bad failed" >&3
	assert_between 900 "$total" 1001 "requests sent"
	assert_equal 0 "$bad" "failed requests"
	# and b served a share until the kill
	[[ $(awk '$2 == "b"' "$load" | wc -l) -gt 50 ]] || fail "b served nothing before the kill"
}

@test "health: 200 servers checked every 100 ms for 10 s: every server checked, daemon CPU" {
	start_pyback many multi 200
	local servers="" i=0 p
	for p in $PY_PORTS; do
		servers+="server s$i 127.0.0.1:$p; "
		i=$((i + 1))
	done
	assert_equal 200 "$i" "backend ports"
	start_spliced "global { workers 2; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { health http /health interval 100ms timeout 1s; $servers }"
	local hz t0 t1 c0 c1 cpu threads
	hz=$(getconf CLK_TCK)
	sleep 1
	t0=$(now_ms)
	c0=$(awk '{ print $14 + $15 }' "/proc/$SPLICED_PID/stat")
	sleep 10
	t1=$(now_ms)
	c1=$(awk '{ print $14 + $15 }' "/proc/$SPLICED_PID/stat")
	threads=$(ls "/proc/$SPLICED_PID/task" | wc -l)
	cpu=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v ms=$((t1 - t0)) \
		'BEGIN { printf "%.1f", c / hz * 100000 / ms }')
	echo "200 servers, interval 100ms: daemon CPU ${cpu}% of one CPU over $((t1 - t0)) ms, $threads threads" >&3
	# counts per port, written by the backend on SIGTERM
	kill -TERM "${PYBACK_PIDS[many]}"
	wait_until 5 test -s "$(pyback_log many).counts" || fail "no counts from the backend"
	local min max sum
	read -r min max sum < <(awk 'NR == 1 { min = $2 } { if ($2 < min) min = $2; if ($2 > max) max = $2; sum += $2 }
		END { print min, max, sum }' "$(pyback_log many).counts")
	echo "checks per server over the run: min $min, max $max, total $sum" >&3
	assert_equal 200 "$(wc -l <"$(pyback_log many).counts")" "servers that answered"
	# 11+ s at 10 checks/s: every server checked about 110 times on an idle machine; the bound
	# only says that none was left out (the backend is one python thread)
	assert_between 30 "$min" 200 "checks of the least checked server"
	log_has "-> down" && fail "a server went down: $(grep -- '-> down' "$SPLICED_ERR" | head -3)"
	# one health thread, not a thread per check: main + 2 workers + health
	assert_between 1 "$threads" 6 "daemon threads"
	awk -v c="$cpu" 'BEGIN { exit !(c < 50) }' || fail "daemon CPU ${cpu}% >= 50%"
}

@test "health: eject slow: a server made slow is ejected, gets no traffic, and returns" {
	command -v wrk >/dev/null || skip "wrk not installed"
	local delay=$BATS_TEST_TMPDIR/c.delay
	start_origin a
	start_origin b
	start_origin c -D "$delay"
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { eject slow 4 window 1s min_requests 3 threshold 50ms; eject consecutive_failures 5 base 3s;
	server a 127.0.0.1:${ORIGIN_PORTS[a]}; server b 127.0.0.1:${ORIGIN_PORTS[b]};
	server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	echo 300 >"$delay"
	timeout 20 wrk -t1 -c6 -d3s "$(url /load)" >/dev/null 2>&1 || true
	grep 'server c' "$SPLICED_ERR"
	grep -q 'server c: up -> ejected (passive: slow: [0-9]* ms against [0-9]* ms' "$SPLICED_ERR" ||
		fail "c was not ejected for being slow"
	if grep -q 'server [ab]: up -> ejected' "$SPLICED_ERR"; then fail "a fast server ejected"; fi
	# fast again; while the ejection lasts c gets nothing
	echo 0 >"$delay"
	local before
	before=$(file_lines "$(origin_log c)")
	run "${CURL[@]}" -H 'Connection: close' "$(url '/e[1-12]')"
	assert_equal 0 "$(grep -c '^c$' <<<"$output")" "requests to c while ejected"
	assert_equal "$before" "$(file_lines "$(origin_log c)")"
	# and it comes back
	wait_until 8 grep -q 'server c: ejected -> up (ejection ended)' "$SPLICED_ERR" ||
		fail "the ejection did not end"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/r[1-12]')"
	echo "$output" | sort | uniq -c
	assert_equal 4 "$(grep -c '^c$' <<<"$output")" "requests to c after the ejection"
}
