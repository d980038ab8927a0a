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
