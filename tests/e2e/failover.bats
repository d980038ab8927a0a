#!/usr/bin/env bats
# failover.bats - servers that refuse, time out or hang up: retries on another server, 503/502/504
# answers, how fast they come, and what the access log records.

load helpers

# start_pyserver NAME MODE: a helper TCP server on a free loopback port, PY_PORT set.
#   blackhole: listen(0) with its accept queue filled by its own connections and never accept,
#              so further SYNs are dropped and connects hang
#   closer:    accept, read the request, close without answering
start_pyserver() {
	local name=$1 mode=$2 out="$BATS_TEST_TMPDIR/py-$1.out"
	timeout 120 "$PYTHON" - "$mode" >"$out" 2>&1 3>&- <<'PY' &
import socket, sys, time
mode = sys.argv[1]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0))
port = l.getsockname()[1]
if mode == "blackhole":
    l.listen(0)
    fill = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(c)
    time.sleep(0.2)
    print("ready", port, flush=True)
    time.sleep(110)
else:
    l.listen(64)
    print("ready", port, flush=True)
    while True:
        c, _ = l.accept()
        c.settimeout(2)
        try:
            c.recv(65536)
        except OSError:
            pass
        c.close()
PY
	record_pid $! "py-$name"
	wait_until 5 grep -q '^ready' "$out" || fail "helper server $name did not start"
	PY_PORT=$(awk '/^ready/ { print $2 }' "$out")
}

# timed_code URL [curl args]: prints "CODE MS"
timed_code() {
	local u=$1 t0 code
	shift
	t0=$(now_ms)
	code=$("${CURL[@]}" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$@" "$u")
	echo "$code $(($(now_ms) - t0))"
}

@test "failover: a server with a closed port is skipped, every request succeeds" {
	local closed
	closed=$(free_port)
	start_origin good
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server bad 127.0.0.1:$closed; server good 127.0.0.1:$ORIGIN_PORT; }"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/r[1-30]')"
	[ "$status" -eq 0 ]
	assert_equal 30 "$(grep -c '^good$' <<<"$output")" "answers from good"
	wait_lines "$ACCESS_LOG" 30
	echo "--- access log"
	cat "$ACCESS_LOG"
	[ "$(file_lines "$ACCESS_LOG")" -eq 30 ]
	[ "$(grep -c 'status=200 .*backend=p/good ' "$ACCESS_LOG")" -eq 30 ] ||
		fail "every access log line must show status=200 backend=p/good"
	if grep -q 'backend=p/bad' "$ACCESS_LOG"; then fail "access log shows the dead server"; fi
	# the failure is reported on stderr
	grep -q 'bad' "$SPLICED_ERR" || fail "no diagnostic about server bad"
}

@test "failover: connect failures are retried for every request, POST with a body too" {
	local closed
	closed=$(free_port)
	start_origin good
	# fail_timeout 1ms: the dead server is tried again (and fails) on nearly every request
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { fail_timeout 1ms; server bad 127.0.0.1:$closed; server good 127.0.0.1:$ORIGIN_PORT; }"
	local i out want
	want="$(printf 'hello %.0s' {1..1000} | sha256sum | cut -d' ' -f1) 6000"
	for i in 1 2 3 4 5 6; do
		out=$(printf 'hello %.0s' {1..1000} | "${CURL[@]}" -H 'Connection: close' \
			--data-binary @- "$(url /upload)")
		assert_equal "$want" "$out" "POST $i"
	done
	run "${CURL[@]}" "$(url '/g[1-10]')"
	assert_equal 10 "$(grep -c '^good$' <<<"$output")"
}

@test "failover: all servers down -> 503 from spliced, quickly" {
	local c1 c2
	c1=$(free_port)
	c2=$(free_port)
	start_spliced "global { timeout connect 5s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server a 127.0.0.1:$c1; server b 127.0.0.1:$c2; }"
	local code ms
	read -r code ms < <(timed_code "$(url /)")
	echo "code=$code ms=$ms body=$(cat "$BATS_TEST_TMPDIR/body")"
	assert_equal 503 "$code"
	assert_equal "503 Service Unavailable" "$(cat "$BATS_TEST_TMPDIR/body")"
	# refused connections fail at once: far below the 5 s connect timeout
	assert_between 0 "$ms" 1500 "time to 503 (ms)"
	# and again while both are marked down
	read -r code ms < <(timed_code "$(url /again)")
	assert_equal 503 "$code"
	assert_between 0 "$ms" 1500 "time to the second 503 (ms)"
	wait_lines "$ACCESS_LOG" 2
	grep -q '"GET / HTTP/1.1" .*status=503' "$ACCESS_LOG" || fail "503 not in the access log"
}

@test "failover: connect timeout to a blackhole -> 503/504 after connect_timeout" {
	start_pyserver bh blackhole
	# the blackhole really swallows connects
	run timeout 3 "$PYTHON" -c "
import socket, sys
s = socket.socket(); s.settimeout(0.5)
try:
    s.connect(('127.0.0.1', $PY_PORT)); print('connected')
except OSError as e:
    print('no connect:', e)"
	[[ $output == "no connect"* ]] || skip "cannot build a blackhole here: $output"
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { connect_timeout 500ms; retries 0; server bh 127.0.0.1:$PY_PORT; }"
	local code ms
	read -r code ms < <(timed_code "$(url /)")
	echo "code=$code ms=$ms"
	[[ $code == 503 || $code == 504 ]] || fail "expected 503 or 504, got $code"
	assert_between 400 "$ms" 3000 "time to the error (ms)"
}

@test "failover: a blackholed server costs one connect_timeout, then the other server answers" {
	start_pyserver bh blackhole
	start_origin good
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { connect_timeout 1500ms; server bh 127.0.0.1:$PY_PORT; server good 127.0.0.1:$ORIGIN_PORT; }"
	local code ms
	# round robin tries bh first
	read -r code ms < <(timed_code "$(url /1)")
	echo "first: code=$code ms=$ms"
	assert_equal 200 "$code"
	assert_equal good "$(cat "$BATS_TEST_TMPDIR/body")"
	assert_between 1400 "$ms" 4500 "first request (ms)"
	# bh is now marked down: no more waiting
	read -r code ms < <(timed_code "$(url /2)")
	echo "second: code=$code ms=$ms"
	assert_equal 200 "$code"
	assert_between 0 "$ms" 1000 "second request (ms)"
}

@test "failover: a server that hangs up without answering: GET is retried elsewhere" {
	start_pyserver closer closer
	start_origin good
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server closer 127.0.0.1:$PY_PORT; server good 127.0.0.1:$ORIGIN_PORT; }"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/r[1-6]')"
	echo "$output"
	assert_equal 6 "$(grep -c '^good$' <<<"$output")"
}

@test "failover: a server that hangs up on a POST with a body -> 502, never replayed" {
	start_pyserver closer closer
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server closer 127.0.0.1:$PY_PORT; }"
	local code
	code=$(head -c 100000 /dev/zero | "${CURL[@]}" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
		--data-binary @- "$(url /upload)") || true
	echo "code=$code body=$(cat "$BATS_TEST_TMPDIR/body" 2>/dev/null)"
	# the request may be cut off while the body is still going up (curl sees a reset), but
	# whatever comes back must be spliced's 502, never a success
	[[ $code == 502 || $code == 000 ]] || fail "expected 502, got $code"
	run "${CURL[@]}" -o /dev/null -w '%{http_code}' "$(url /get)"
	assert_equal 502 "$output" "GET to a pool whose only server hangs up"
}

@test "failover: a failed server is used again after fail_timeout" {
	local port
	port=$(free_port)
	start_origin other
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { fail_timeout 1s; server back 127.0.0.1:$port; server other 127.0.0.1:${ORIGIN_PORTS[other]}; }"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/r[1-4]')"
	assert_equal 4 "$(grep -c '^other$' <<<"$output")"
	start_origin back -p "$port"
	sleep 1.2
	run "${CURL[@]}" -H 'Connection: close' "$(url '/r[1-10]')"
	echo "$output"
	assert_between 3 "$(grep -c '^back$' <<<"$output")" 7 "requests to the recovered server"
}

# ---- lone usable server, retry_on, a server killed under load ----

# codes_until_ok URL SECONDS: GET every 100 ms until a 200 or the time is up; prints the codes
codes_until_ok() {
	local u=$1 end code
	end=$(($(now_ms) + $2 * 1000))
	while (($(now_ms) < end)); do
		code=$(http_code "$u" -H 'Connection: close')
		printf '%s\n' "$code"
		[[ $code == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

# restart_origin NAME SECONDS: stop an origin, keep its port closed for SECONDS, start it again
restart_origin() {
	local port=${ORIGIN_PORTS[$1]}
	stop_origin "$1"
	sleep "$2"
	start_origin "$1" -p "$port"
}

@test "failover: a lone server restarted for two seconds answers as soon as it is back, no 503 after" {
	start_origin solo
	# a failure marks it for 10 s, and one failure would eject it (100 %): neither may keep
	# the pool's last server from answering
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { fail_timeout 10s; eject consecutive_failures 1 base 10s; max_ejection_percent 100;
	server solo 127.0.0.1:$ORIGIN_PORT; }"
	assert_equal 200 "$(http_code "$(url /before)")"
	stop_origin solo
	assert_equal 503 "$(http_code "$(url /down)")" "while the server is down"
	sleep 2
	start_origin solo -p "${ORIGIN_PORTS[solo]}"
	run "${CURL[@]}" -o /dev/null -w '%{http_code}\n' -H 'Connection: close' "$(url '/back[1-20]')"
	echo "$output"
	assert_equal 20 "$(grep -c '^200$' <<<"$output")" "answers once the server is back"
	grep -q 'server solo: connect failed' "$SPLICED_ERR"
}

@test "failover: two servers, one in maintenance: the other restarted answers as soon as it is back" {
	start_origin a
	start_origin b
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { fail_timeout 10s; server a 127.0.0.1:${ORIGIN_PORTS[a]} maintenance;
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	assert_equal b "$(backend_of "$(url /x)")"
	stop_origin b
	assert_equal 503 "$(http_code "$(url /down)")" "maintenance is still out"
	sleep 2
	start_origin b -p "${ORIGIN_PORTS[b]}"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/back[1-20]')"
	assert_equal 20 "$(grep -c '^b$' <<<"$output")" "answers from b once it is back"
}

@test "failover: a backup takes over, restarts without a 503 once back, and hands back to the primary" {
	local pport
	pport=$(free_port)
	start_origin bk
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { fail_timeout 1500ms; server prim 127.0.0.1:$pport; server bk 127.0.0.1:${ORIGIN_PORTS[bk]} backup; }"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/a[1-5]')"
	assert_equal 5 "$(grep -c '^bk$' <<<"$output")" "the backup took over"
	restart_origin bk 2
	run "${CURL[@]}" -H 'Connection: close' "$(url '/b[1-10]')"
	echo "$output"
	assert_equal 10 "$(grep -c '^bk$' <<<"$output")" "the backup answers as soon as it is back"
	start_origin prim -p "$pport"
	sleep 1.6
	run "${CURL[@]}" -H 'Connection: close' "$(url '/c[1-10]')"
	echo "$output"
	assert_equal 10 "$(grep -c '^prim$' <<<"$output")" "handed back to the primary"
}

@test "failover: retry_on 502 503 504 sends a GET elsewhere; the last response is returned; never a POST" {
	start_origin b502 -S 502
	start_origin b503 -S 503
	start_origin good
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { path /; pool p; } }
pool p { retry_on 502 503 504; retries 2;
	server b502 127.0.0.1:${ORIGIN_PORTS[b502]}; server b503 127.0.0.1:${ORIGIN_PORTS[b503]};
	server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/g[1-12]')"
	echo "$output"
	assert_equal 12 "$(grep -c '^good$' <<<"$output")" "every GET answered by good"
	wait_lines "$ACCESS_LOG" 12
	grep -q 'tries=3' "$ACCESS_LOG" || fail "no request with tries=3 in the access log"
	grep -q 'tries=2' "$ACCESS_LOG" || fail "no request with tries=2 in the access log"
	# a POST with a streamed (chunked) body is never sent again: the 5xx goes to the client
	local i code posts=0
	for i in 1 2 3 4 5 6; do
		code=$(printf 'body %.0s' {1..2000} | "${CURL[@]}" -o /dev/null -w '%{http_code}' \
			-H 'Transfer-Encoding: chunked' --data-binary @- "$(url /post)")
		[[ $code == 200 ]] || posts=$((posts + 1))
	done
	assert_between 1 "$posts" 6 "POSTs answered 5xx"
	if grep '"POST' "$ACCESS_LOG" | grep -q 'tries='; then fail "a POST was sent twice"; fi
	# good saw exactly the POSTs it answered: none came through a retry
	assert_equal $((6 - posts)) "$(grep -c '^POST' "$(origin_log good)")" "POSTs at good"
}

@test "failover: with every server answering 5xx the client gets the last server's response" {
	start_origin b502 -S 502
	start_origin b503 -S 503
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { retry_on 502 503; server b502 127.0.0.1:${ORIGIN_PORTS[b502]};
	server b503 127.0.0.1:${ORIGIN_PORTS[b503]}; }"
	local i out
	for i in 1 2 3 4; do
		out=$("${CURL[@]}" -w ' %{http_code}' -H 'Connection: close' "$(url /x$i)")
		echo "$out"
		# the body names the server that answered: the second one tried
		[[ $out == "502 Bad Gateway from b502"*" 502" || $out == "503 Service Unavailable from b503"*" 503" ]] ||
			fail "not a backend's own 5xx: $out"
	done
	wait_lines "$ACCESS_LOG" 4
	[ "$(grep -c 'tries=2' "$ACCESS_LOG")" -eq 4 ]
	# each line names the server whose response went out
	grep 'status=502' "$ACCESS_LOG" | grep -qv 'backend=p/b502' && fail "502 from another server"
	grep 'status=503' "$ACCESS_LOG" | grep -qv 'backend=p/b503' && fail "503 from another server"
	return 0
}

@test "failover: retry_on timeout: a GET to a server past its timeout goes elsewhere, a POST gets 504" {
	echo 3000 >"$BATS_TEST_TMPDIR/slow.delay"
	start_origin slow -D "$BATS_TEST_TMPDIR/slow.delay"
	start_origin good
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { timeout server 400ms; retry_on connect_failure timeout;
	server slow 127.0.0.1:${ORIGIN_PORTS[slow]}; server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/t[1-4]')"
	echo "$output"
	assert_equal 4 "$(grep -c '^good$' <<<"$output")" "GETs answered by good"
	local code
	for i in 1 2; do
		code=$(printf 'x%.0s' {1..100} | "${CURL[@]}" -o /dev/null -w '%{http_code}' \
			-H 'Transfer-Encoding: chunked' --data-binary @- "$(url /p$i)")
		[[ $code == 200 || $code == 504 ]] || fail "POST: $code"
	done
	wait_lines "$ACCESS_LOG" 6
	grep '"POST' "$ACCESS_LOG" | grep -q 'tries=' && fail "a POST was retried"
	grep -q '"POST .*status=504 .*backend=p/slow' "$ACCESS_LOG" || fail "no POST 504 from slow"
	grep -q 'tries=2' "$ACCESS_LOG"
}

@test "failover: 60 s of wrk while one of three servers is killed and restarted in a loop" {
	command -v wrk >/dev/null || skip "wrk not installed"
	start_origin a
	start_origin b
	start_origin c
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { keepalive 16; fail_timeout 1s; retry_on connect_failure reset timeout 502 503 504;
	timeout server 5s;
	server a 127.0.0.1:${ORIGIN_PORTS[a]}; server b 127.0.0.1:${ORIGIN_PORTS[b]};
	server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	local w=$BATS_TEST_TMPDIR/wrk.out end kills=0 non2xx sockerr
	timeout 90 wrk -t1 -c16 -d60s "$(url /load)" >"$w" 2>&1 &
	local wp=$!
	record_pid "$wp" wrk
	end=$(($(now_ms) + 57000))
	while (($(now_ms) < end)); do
		sleep 1
		kill -KILL "${ORIGIN_PIDS[c]}"
		wait "${ORIGIN_PIDS[c]}" 2>/dev/null || true
		kills=$((kills + 1))
		sleep 1
		start_origin c -p "${ORIGIN_PORTS[c]}"
	done
	wait "$wp" || true
	cat "$w"
	non2xx=$(awk '/Non-2xx/ { print $NF }' "$w")
	sockerr=$(awk -F'[ ,]+' '/Socket errors/ { print $4 + $6 + $8 + $10 }' "$w")
	echo "# kills: $kills, non-2xx: ${non2xx:-0}, socket errors: ${sockerr:-0}, $(grep -oE '[0-9]+ requests in' "$w")" >&3
	grep -qE '[0-9]+ requests in' "$w"
	[ "$kills" -ge 20 ]
	assert_equal 0 "${non2xx:-0}" "non-2xx responses"
	assert_equal 0 "${sockerr:-0}" "socket errors"
	kill -0 "$SPLICED_PID"
}
