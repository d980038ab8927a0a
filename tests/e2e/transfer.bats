#!/usr/bin/env bats
# transfer.bats - bodies through the proxy: large downloads and uploads (digest against the
# origin directly), chunked both ways, close-delimited, HEAD, 204/304, pipelining, Expect.

load helpers

one_pool() {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:${ORIGIN_PORTS[o]}; }"
}

# direct_sha SIZE: sha256 of /size/SIZE fetched from origin o directly (cached for the run; the
# body is a fixed pattern)
direct_sha() {
	local cache="$BATS_RUN_TMPDIR/direct-sha-$1"
	if [[ ! -s $cache ]]; then
		"${CURL[@]}" --max-time 120 "$(origin_url o "/size/$1")" | sha_of_stream >"$cache.tmp"
		mv "$cache.tmp" "$cache"
	fi
	cat "$cache"
}

# direct_repr PATH: python repr of the body of PATH fetched from origin o directly
direct_repr() {
	"${CURL[@]}" "$(origin_url o "$1")" | "$PYTHON" -c 'import sys; print(repr(sys.stdin.buffer.read()[:60]))'
}

@test "transfer: 1 GiB download, digest equals a direct download" {
	one_pool
	local want got
	want=$(direct_sha 1g)
	got=$("${CURL[@]}" --max-time 120 -D "$BATS_TEST_TMPDIR/h" "$(url /size/1g)" | sha_of_stream)
	assert_equal "$want" "$got" "sha256 of 1 GiB through spliced"
	assert_contains "$(tr -d '\r' <"$BATS_TEST_TMPDIR/h")" "Content-Length: 1073741824"
	wait_lines "$ACCESS_LOG" 1
	local out
	out=$(sed -n 's/.*status=200 .*bytes_out=\([0-9]*\) .*/\1/p' "$ACCESS_LOG")
	assert_between 1073741824 "${out:-0}" 1073742824 "access log bytes_out"
}

@test "transfer: 1 GiB upload with Content-Length, digest equals" {
	one_pool
	local f="$BATS_TEST_TMPDIR/up.bin" want got
	random_file "$f" 1024
	want="$(sha_of_file "$f") 1073741824"
	got=$("${CURL[@]}" --max-time 120 -T "$f" "$(url /upload)")
	rm -f "$f"
	assert_equal "$want" "$got" "sha256 and length seen by the origin"
}

@test "transfer: chunked download of 100 MiB" {
	one_pool
	local want got
	want=$(direct_sha 100m)
	got=$("${CURL[@]}" -D "$BATS_TEST_TMPDIR/h" "$(url '/size/100m?chunked=1')" | sha_of_stream)
	assert_equal "$want" "$got"
	local h
	h=$(tr -d '\r' <"$BATS_TEST_TMPDIR/h")
	assert_contains "$h" "Transfer-Encoding: chunked"
	assert_not_contains "$h" "Content-Length"
}

@test "transfer: chunked upload of 64 MiB" {
	one_pool
	local f="$BATS_TEST_TMPDIR/up.bin" want got
	random_file "$f" 64
	want="$(sha_of_file "$f") 67108864"
	got=$("${CURL[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$f" "$(url /upload)")
	assert_equal "$want" "$got"
	grep -q '^POST /upload' "$(origin_log o)"
}

@test "transfer: close-delimited response reaches an HTTP/1.1 client chunked, keep-alive goes on" {
	one_pool
	local want got h
	want=$(direct_sha 10m)
	got=$("${CURL[@]}" -D "$BATS_TEST_TMPDIR/h" "$(url '/size/10m?close=1')" | sha_of_stream)
	assert_equal "$want" "$got"
	h=$(tr -d '\r' <"$BATS_TEST_TMPDIR/h")
	echo "$h"
	assert_not_contains "$h" "Content-Length"
	assert_contains "$h" "Transfer-Encoding: chunked"
	assert_not_contains "$h" "Connection: close"
	# the client connection carries the next request (one connect for the two)
	"${CURL[@]}" -w '%{num_connects}\n' -o /dev/null -o "$BATS_TEST_TMPDIR/second" \
		"$(url '/size/1m?close=1')" "$(url /size/100)" >"$BATS_TEST_TMPDIR/nc"
	assert_equal "1 0" "$(tr '\n' ' ' <"$BATS_TEST_TMPDIR/nc" | sed 's/ $//')" "connects per request"
	assert_equal 100 "$(stat -c %s "$BATS_TEST_TMPDIR/second")" "second response"
}

@test "transfer: a close-delimited body the origin cuts with a reset fails at the HTTP/1.1 client" {
	one_pool
	local rc=0
	"${CURL[@]}" -o "$BATS_TEST_TMPDIR/body" -D "$BATS_TEST_TMPDIR/h" \
		"$(url '/size/10m?close=1&reset_at=3m')" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
	cat "$BATS_TEST_TMPDIR/err"
	assert_contains "$(tr -d '\r' <"$BATS_TEST_TMPDIR/h")" "Transfer-Encoding: chunked"
	# 18: transfer closed with outstanding read data; 56: receive failure
	[[ $rc -eq 18 || $rc -eq 56 ]] || fail "curl exit $rc: the cut body passed for complete"
	(($(stat -c %s "$BATS_TEST_TMPDIR/body") < 10485760)) || fail "a cut body came whole"
	wait_lines "$ACCESS_LOG" 1
	assert_contains "$(cat "$ACCESS_LOG")" "term=server_closed"
}

@test "transfer: close-delimited response to an HTTP/1.0 client stays close-delimited" {
	one_pool
	local want got h
	want=$(direct_sha 10m)
	got=$("${CURL[@]}" --http1.0 -D "$BATS_TEST_TMPDIR/h" "$(url '/size/10m?close=1')" | sha_of_stream)
	assert_equal "$want" "$got"
	h=$(tr -d '\r' <"$BATS_TEST_TMPDIR/h")
	assert_not_contains "$h" "Content-Length"
	assert_not_contains "$h" "chunked"
	assert_contains "$h" "Connection: close"
}

@test "transfer: HEAD gets the headers and no body, keep-alive continues" {
	one_pool
	run "${CURL[@]}" -I "$(url /size/1m)"
	echo "$output"
	assert_contains "$output" "HTTP/1.1 200"
	assert_contains "$output" "Content-Length: 1048576"
	printf '%s' $'HEAD /size/1m HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'GET /size/7 HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'HEAD /size/1m?chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'GET /size/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 10 --expect-close
	[ "$RAW_RC" -eq 0 ]
	run parse_responses "$RAW_OUT" HEAD GET HEAD GET
	echo "$output"
	assert_equal "status=200 backend=o connreq=1 len=0 body=b''
status=200 backend=o connreq=2 len=7 body=$(direct_repr /size/7)
status=200 backend=o connreq=3 len=0 body=b''
status=200 backend=o connreq=4 len=3 body=$(direct_repr /size/3)" "$output"
}

@test "transfer: 204 and 304 have no body, the connection stays usable" {
	one_pool
	printf '%s' $'GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'GET /size/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 10 --expect-close
	[ "$RAW_RC" -eq 0 ]
	run parse_responses "$RAW_OUT"
	echo "$output"
	assert_equal "status=204 backend=o connreq=1 len=0 body=b''
status=304 backend=o connreq=2 len=0 body=b''
status=404 backend=o connreq=3 len=14 body=b'404 Not Found\\n'
status=200 backend=o connreq=4 len=5 body=$(direct_repr /size/5)" "$output"
}

@test "transfer: pipelined requests in one write (one with a body) are answered in order" {
	one_pool
	printf '%s' $'GET /echo HTTP/1.1\r\nHost: pipe.test\r\n\r\n' \
		$'POST /upload HTTP/1.1\r\nHost: pipe.test\r\nContent-Length: 11\r\n\r\nhello world' \
		$'GET /size/10 HTTP/1.1\r\nHost: pipe.test\r\nConnection: close\r\n\r\n' \
		>"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 10 --expect-close
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed after the last (Connection: close) request"
	run parse_responses "$RAW_OUT"
	echo "$output"
	local sha
	sha=$(printf 'hello world' | sha256sum | cut -d' ' -f1)
	[ "${#lines[@]}" -eq 3 ] || fail "expected 3 responses"
	[[ ${lines[0]} == "status=200 backend=o connreq=1 "*"body=b'GET /echo HTTP/1.1\\r\\nHost: pipe.test"* ]] ||
		fail "first response is not the echo"
	assert_equal "status=200 backend=o connreq=2 len=68 body=b'${sha:0:60}'" "${lines[1]}"
	[[ ${lines[2]} == "status=200 backend=o connreq=3 len=10 "* ]] || fail "third response"
}

@test "transfer: Expect: 100-continue upload gets the 100 without waiting" {
	one_pool
	local f="$BATS_TEST_TMPDIR/up.bin" t0 ms
	random_file "$f" 1
	t0=$(now_ms)
	run "${CURL[@]}" -v --expect100-timeout 5 -H 'Expect: 100-continue' \
		--data-binary @"$f" "$(url /upload)"
	ms=$(($(now_ms) - t0))
	echo "$output" | grep -E '^[<>] (HTTP|Expect)|^[0-9a-f]{64}'
	[ "$status" -eq 0 ]
	assert_contains "$output" "$(sha_of_file "$f") 1048576"
	assert_contains "$output" "< HTTP/1.1 100 Continue"
	# curl would wait the whole 5 s expect100-timeout without the 100
	assert_between 0 "$ms" 3000 "upload time (ms)"
}

@test "transfer: keep-alive client requests reuse one upstream connection" {
	one_pool
	run "${CURL[@]}" -w '%{num_connects} %header{x-conn-req}\n' -o /dev/null "$(url /a)" \
		-o /dev/null "$(url /size/100k)" -o /dev/null "$(url '/size/64k?chunked=1')" \
		-o /dev/null "$(url /status/204)" -o /dev/null "$(url /e)"
	echo "$output"
	assert_equal $'1 1\n0 2\n0 3\n0 4\n0 5' "$output"
}

@test "transfer: a slow reader gets every byte (backpressure)" {
	one_pool
	local want got
	want=$(direct_sha 24m)
	got=$("${CURL[@]}" --limit-rate 24m "$(url /size/24m)" | sha_of_stream)
	assert_equal "$want" "$got"
}

@test "transfer: 8 concurrent downloads and uploads" {
	one_pool
	local want i f="$BATS_TEST_TMPDIR/up.bin" pids=()
	want=$(direct_sha 32m)
	random_file "$f" 16
	for i in 1 2 3 4 5 6 7 8; do
		if ((i % 2)); then
			"${CURL[@]}" --max-time 30 "$(url "/size/32m?n=$i")" | sha_of_stream \
				>"$BATS_TEST_TMPDIR/c$i" 3>&- &
		else
			"${CURL[@]}" --max-time 30 -T "$f" "$(url /upload)" >"$BATS_TEST_TMPDIR/c$i" 3>&- &
		fi
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || true; done
	echo "results:"
	cat "$BATS_TEST_TMPDIR"/c[1-8]
	local up
	up="$(sha_of_file "$f") 16777216"
	for i in 1 2 3 4 5 6 7 8; do
		if ((i % 2)); then
			assert_equal "$want" "$(cat "$BATS_TEST_TMPDIR/c$i")" "download $i"
		else
			assert_equal "$up" "$(cat "$BATS_TEST_TMPDIR/c$i")" "upload $i"
		fi
	done
}

@test "transfer: HTTP/1.0 client gets a close-delimited or sized answer and a close" {
	one_pool
	printf '%s' $'GET /size/1000?chunked=1 HTTP/1.0\r\nHost: x\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 10 --expect-close
	[ "$RAW_RC" -eq 0 ] || fail "HTTP/1.0 without keep-alive must be closed"
	run parse_responses "$RAW_OUT"
	echo "$output"
	[[ $output == "status=200 backend=o connreq=1 len=1000 "* ]] || fail "1000 bytes expected"
	assert_not_contains "$(head -c 300 "$RAW_OUT")" "chunked" "response head to HTTP/1.0"
}

# start_slow_reader: an origin that reads request bodies slowly (16 KiB per ms), answers
# "SHA256 LENGTH"; sets SLOW_PORT
start_slow_reader() {
	local out="$BATS_TEST_TMPDIR/slowread.out"
	timeout 120 "$PYTHON" - >"$out" 2>&1 3>&- <<'PY' &
import hashlib, socket, threading, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0))
l.listen(16)
print("ready", l.getsockname()[1], flush=True)
def serve(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    cl = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            cl = int(v)
    h = hashlib.sha256(rest[:cl])
    n = len(rest[:cl])
    while n < cl:
        d = c.recv(min(16384, cl - n))
        if not d:
            break
        h.update(d)
        n += len(d)
        time.sleep(0.001)
    body = f"{h.hexdigest()} {n}\n".encode()
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Backend: slowread\r\n\r\n"
                  % len(body) + body)
    except OSError:
        pass
    c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
	record_pid $! slowread
	wait_until 5 grep -q '^ready' "$out" || fail "slow reader did not start"
	SLOW_PORT=$(awk '/^ready/ { print $2 }' "$out")
}

@test "transfer: uploads to a slowly reading origin complete (no stall at the end of the body)" {
	start_slow_reader
	# a 1 MiB pipe makes the last span of the body large, so it often meets a full socket
	start_spliced "global { pipe_size 1m; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server s 127.0.0.1:$SLOW_PORT; }"
	local f="$BATS_TEST_TMPDIR/up.bin" want got i t0
	random_file "$f" 8
	want="$(sha_of_file "$f") 8388608"
	# the slow origin needs about 1 s for 8 MiB; a stalled upload never finishes
	for i in 1 2 3 4; do
		t0=$(now_ms)
		got=$("${CURL[@]}" --max-time 8 -H 'Expect:' --data-binary @"$f" "$(url /upload)" 2>&1) || true
		echo "upload $i: $got ($(($(now_ms) - t0)) ms)"
		assert_equal "$want" "$got" "upload $i through spliced"
	done
}

@test "transfer: upload with Content-Length to a slowly reading origin, default pipe size" {
	start_slow_reader
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server s 127.0.0.1:$SLOW_PORT; }"
	local f="$BATS_TEST_TMPDIR/up.bin" want got i t0
	random_file "$f" 8
	want="$(sha_of_file "$f") 8388608"
	for i in 1 2 3; do
		t0=$(now_ms)
		got=$("${CURL[@]}" --max-time 8 -H 'Expect:' --data-binary @"$f" "$(url /upload)" 2>&1) || true
		echo "upload $i: $got ($(($(now_ms) - t0)) ms)"
		assert_equal "$want" "$got" "upload $i through spliced"
	done
}

@test "transfer: pipelined keep-alive requests alternating two pools, large and small bodies both ways: right backend, digests equal" {
	start_origin a
	start_origin b
	start_spliced "listener web {
	bind 127.0.0.1:@PORT@;
	route { host a.test; pool a; }
	route { host b.test; pool b; }
}
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool b { server s 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	run timeout 120 "$PYTHON" "$E2E_ROOT/tests/origin/pipeline_pools.py" "$SPLICED_PORT" \
		"${ORIGIN_PORTS[a]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"bad 0"* ]]
}

# conn_req URL [curl args]: the X-Conn-Req header (requests the origin saw on that connection)
conn_req() {
	local u=$1
	shift
	"${CURL[@]}" -o /dev/null -D - "$@" "$u" | tr -d '\r' |
		awk -F': ' 'tolower($1) == "x-conn-req" { print $2; exit }'
}

@test "transfer: pool keepalive: separate client connections reuse parked upstream connections; POST bodies do not; keepalive_timeout closes them" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { keepalive 4; keepalive_timeout 500ms; server o 127.0.0.1:${ORIGIN_PORTS[o]}; }"
	local i n most=0
	for i in $(seq 1 12); do
		n=$(conn_req "$(url /k$i)" -H 'Connection: close')
		((n > most)) && most=$n
	done
	echo "highest X-Conn-Req over 12 client connections: $most"
	# two workers, each with its own parked connection: at least 6 requests on one of them
	((most >= 6))
	# a body that could not be sent twice never goes over a parked connection
	[ "$(conn_req "$(url /upload)" --data-binary 'abc' -H 'Connection: close')" = 1 ]
	# idle past keepalive_timeout: closed, the next request opens a new connection
	sleep 1.2
	[ "$(conn_req "$(url /after)" -H 'Connection: close')" = 1 ]
}

# warm_pool N: N short requests on separate client connections, so both workers park
# upstream connections
warm_pool() {
	local i
	for i in $(seq 1 "$1"); do
		[ "$(http_code "$(url /warm$i)" -H 'Connection: close')" = 200 ]
	done
}

@test "transfer: pool keepalive: tunnels on reused upstream connections end when the client half-closes" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { keepalive 4; server o 127.0.0.1:${ORIGIN_PORTS[o]}; }"
	local i
	for i in 1 2 3 4; do
		warm_pool 4
		# the tunnel's end is only seen once the daemon's byte counts of the upstream socket
		# match what the kernel says it received over the socket's whole life
		run timeout 60 "$PYTHON" "$RAWCLIENT" 127.0.0.1 "$SPLICED_PORT" --ws-echo 1048576 \
			--half-close --timeout 20
		echo "$output"
		[ "$status" -eq 0 ]
		assert_equal "status=101 echo=ok bytes=1048576" "$output"
	done
}

@test "transfer: pool keepalive: bodies both ways over reused upstream connections, splice on: digests equal" {
	start_origin o
	# one worker, so the connection a short request parks is the one the next request takes
	start_spliced "global { workers 1; }
listener web { bind 127.0.0.1:@PORT@; splice on; route { pool p; } }
pool p { keepalive 4; server o 127.0.0.1:${ORIGIN_PORTS[o]}; }"
	local f="$BATS_TEST_TMPDIR/up.bin" h="$BATS_TEST_TMPDIR/h" want_dl want_up got i
	random_file "$f" 32
	want_up="$(sha_of_file "$f") 33554432"
	want_dl=$(direct_sha 64m)
	# conn_req_of HEADERS-FILE: X-Conn-Req of the response (the origin's count on its connection)
	conn_req_of() { tr -d '\r' <"$1" | awk -F': ' 'tolower($1) == "x-conn-req" { print $2 }'; }
	for i in 1 2 3 4 5 6; do
		# a short exchange parks its connection; the body then travels over it (a connection
		# that carried a kernel span is in the sockhash and is closed, not parked, after it)
		warm_pool 1
		got=$("${CURL[@]}" --max-time 60 -D "$h" -H 'Connection: close' "$(url /size/64m)" |
			sha_of_stream)
		assert_equal "$want_dl" "$got" "download $i"
		(($(conn_req_of "$h") >= 2)) || fail "download $i did not reuse a parked connection"
		# PUT is idempotent: it may take a parked connection too
		warm_pool 1
		got=$("${CURL[@]}" --max-time 60 -D "$h" -T "$f" -H 'Connection: close' "$(url /upload)")
		assert_equal "$want_up" "$got" "upload $i"
		(($(conn_req_of "$h") >= 2)) || fail "upload $i did not reuse a parked connection"
	done
}

@test "transfer: a server that closes idle connections as they are reused costs no error (retried on a new connection)" {
	command -v wrk >/dev/null || skip "wrk not installed"
	local port w=$BATS_TEST_TMPDIR/wrk.out
	port=$(free_port)
	"$PYTHON" "$E2E_ROOT/tests/origin/idle_closer.py" "$port" >"$BATS_TEST_TMPDIR/closer.out" 2>&1 &
	record_pid $! idle-closer
	wait_until 5 _port_listening "$port"
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { keepalive 8; server closer 127.0.0.1:$port; }"
	# separate client connections reuse parked upstream connections; kept-alive clients
	# reuse their own: one server only, so a 502 would show any unretried failure
	timeout 30 wrk -t2 -c8 -d3s -H 'Connection: close' "$(url /c)" >"$w" 2>&1
	cat "$w"
	grep -q 'requests in' "$w"
	! grep -qE 'Non-2xx|Socket errors' "$w"
	timeout 30 wrk -t2 -c8 -d3s "$(url /k)" >"$w" 2>&1
	cat "$w"
	grep -q 'requests in' "$w"
	! grep -qE 'Non-2xx|Socket errors' "$w"
}

@test "transfer: pool keepalive: a parked connection the server closed is not used (no error)" {
	start_origin o
	local port=${ORIGIN_PORTS[o]}
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { keepalive 4; server o 127.0.0.1:$port; }"
	for i in 1 2 3 4; do
		[ "$(backend_of "$(url /x$i)" -H 'Connection: close')" = o ]
	done
	# the origin goes away (its parked connections see a FIN) and comes back on the same port
	stop_pid "${ORIGIN_PIDS[o]}"
	"$ORIGIN_BIN" -p "$port" -n o2 >"$BATS_TEST_TMPDIR/o2.out" 2>&1 &
	record_pid $! origin-o2
	wait_until 5 _port_listening "$port"
	for i in 1 2 3 4 5 6; do
		[ "$(http_code "$(url /y$i)" -H 'Connection: close')" = 200 ]
	done
	[ "$(backend_of "$(url /z)")" = o2 ]
}
