#!/usr/bin/env bats
# timeouts.bats - slow clients that are fine, and the header, idle and server timeouts.

load helpers

# raw_timed FILE [rawclient args]: raw_send, and RAW_MS = elapsed milliseconds
raw_timed() {
	local t0
	t0=$(now_ms)
	raw_send "$@"
	RAW_MS=$(($(now_ms) - t0))
}

@test "timeouts: a client sending its head byte by byte gets a correct response" {
	start_origin o
	start_spliced "global { timeout header 10s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	printf 'GET /echo HTTP/1.1\r\nHost: slow.test\r\nX-Slow: yes\r\nConnection: close\r\n\r\n' \
		>"$BATS_TEST_TMPDIR/req"
	raw_timed "$BATS_TEST_TMPDIR/req" --byte-by-byte 5 --timeout 10 --expect-close
	echo "rc=$RAW_RC ms=$RAW_MS"
	[ "$RAW_RC" -eq 0 ]
	run parse_responses "$RAW_OUT"
	echo "$output"
	[[ $output == "status=200 backend=o connreq=1 "*"GET /echo HTTP/1.1"* ]] || fail "no echo"
	assert_contains "$(cat "$RAW_OUT")" "X-Slow: yes"
}

@test "timeouts: a body sent byte by byte arrives whole" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	printf 'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' \
		>"$BATS_TEST_TMPDIR/req"
	raw_timed "$BATS_TEST_TMPDIR/req" --byte-by-byte 2 --timeout 10 --expect-close
	[ "$RAW_RC" -eq 0 ]
	run parse_responses "$RAW_OUT"
	echo "$output"
	local sha
	sha=$(printf 'hello world' | sha256sum | cut -d' ' -f1)
	[[ $output == "status=200 backend=o connreq=1 len=68 body=b'${sha:0:60}'" ]] || fail "digest"
}

@test "timeouts: header timeout: half a head -> 408 (or close) within about the timeout" {
	start_origin o
	start_spliced "global { timeout header 1s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	printf 'GET / HTTP/1.1\r\nHost: x\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_timed "$BATS_TEST_TMPDIR/req" --timeout 6 --expect-close
	echo "rc=$RAW_RC ms=$RAW_MS"
	cat "$RAW_OUT"
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed by the header timeout"
	assert_between 800 "$RAW_MS" 3500 "time to close (ms)"
	if [[ -s $RAW_OUT ]]; then
		assert_equal "HTTP/1.1 408 Request Timeout" "$(head -n 1 "$RAW_OUT" | tr -d '\r')"
	fi
	[ ! -s "$(origin_log o)" ] || fail "the origin saw the incomplete request"
}

@test "timeouts: header timeout counts the whole head, not the gap between bytes" {
	start_origin o
	start_spliced "global { timeout header 1s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# 60 bytes at 50 ms each: every gap is short, the head takes 3 s in total
	printf 'GET / HTTP/1.1\r\nHost: x\r\nX-Drip: 0123456789012345\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_timed "$BATS_TEST_TMPDIR/req" --byte-by-byte 50 --timeout 8 --expect-close
	echo "rc=$RAW_RC ms=$RAW_MS"
	cat "$RAW_OUT"
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed"
	assert_not_contains "$(cat "$RAW_OUT")" "200 OK" "response to a head slower than the timeout"
	[ ! -s "$(origin_log o)" ] || fail "the origin saw the request"
}

@test "timeouts: a connection that never sends a byte is closed after the header timeout" {
	start_origin o
	start_spliced "global { timeout header 1s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	: >"$BATS_TEST_TMPDIR/req"
	raw_timed "$BATS_TEST_TMPDIR/req" --timeout 6 --expect-close
	echo "rc=$RAW_RC ms=$RAW_MS"
	[ "$RAW_RC" -eq 0 ] || fail "silent connection not closed"
	assert_between 800 "$RAW_MS" 3500 "time to close (ms)"
}

@test "timeouts: idle keep-alive connection is closed after the idle timeout" {
	start_origin o
	start_spliced "global { timeout idle 1s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_timed "$BATS_TEST_TMPDIR/req" --timeout 6 --expect-close
	echo "rc=$RAW_RC ms=$RAW_MS"
	run parse_responses "$RAW_OUT"
	echo "$output"
	[ "$RAW_RC" -eq 0 ] || fail "idle connection not closed"
	assert_between 800 "$RAW_MS" 3500 "time to close (ms)"
	# exactly the one response, no error appended for the idle close
	assert_equal "status=200 backend=o connreq=1 len=2 body=b'o\\n'" "$output"
}

@test "timeouts: keep-alive connection survives shorter pauses than the idle timeout" {
	start_origin o
	start_spliced "global { timeout idle 2s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	run timeout 20 "$PYTHON" - "$SPLICED_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
for i in range(3):
    s.sendall(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    data = b""
    while not data.endswith(b"\r\n\r\no\n"):
        d = s.recv(4096)
        if not d:
            print("closed before response", i)
            sys.exit(1)
        data += d
    print(data.split(b"\r\n")[0].decode(), [l for l in data.split(b"\r\n") if l.startswith(b"X-Conn-Req")][0].decode())
    time.sleep(0.8)
PY
	echo "$output"
	[ "$status" -eq 0 ]
	assert_equal "HTTP/1.1 200 OK X-Conn-Req: 1
HTTP/1.1 200 OK X-Conn-Req: 2
HTTP/1.1 200 OK X-Conn-Req: 3" "$output"
}

@test "timeouts: server timeout waiting for the response head -> 504" {
	start_origin o
	start_spliced "global { timeout server 1s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	local t0 code ms
	t0=$(now_ms)
	code=$("${CURL[@]}" --max-time 10 -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
		"$(url '/slow?ms=5000')") || true
	ms=$(($(now_ms) - t0))
	echo "code=$code ms=$ms body=$(cat "$BATS_TEST_TMPDIR/body")"
	assert_equal 504 "$code"
	assert_equal "504 Gateway Timeout" "$(cat "$BATS_TEST_TMPDIR/body")"
	assert_between 800 "$ms" 3500 "time to 504 (ms)"
	wait_lines "$ACCESS_LOG" 1
	grep -q 'status=504 .*backend=p/o ' "$ACCESS_LOG" || fail "504 not logged with its backend"
}

@test "timeouts: a slow response inside the server timeout is delivered" {
	start_origin o
	start_spliced "global { timeout server 3s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	run "${CURL[@]}" --max-time 10 -w ' %{http_code}' "$(url '/slow?ms=1000')"
	assert_equal $'o\n 200' "$output"
}

@test "timeouts: server stalls in the middle of a body -> the client connection is closed" {
	start_origin o
	start_spliced "global { timeout server 1s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# /hold sends a head promising 100 bytes, then nothing
	local t0 rc=0 ms
	t0=$(now_ms)
	"${CURL[@]}" --max-time 6 -D "$BATS_TEST_TMPDIR/h" -o /dev/null "$(url /hold)" 2>/dev/null || rc=$?
	ms=$(($(now_ms) - t0))
	echo "curl rc=$rc ms=$ms"
	cat "$BATS_TEST_TMPDIR/h"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/h")" "HTTP/1.1 200"
	# curl: 18 = transfer closed with outstanding data (28 would be our own 6 s limit)
	assert_equal 18 "$rc" "curl exit status"
	assert_between 800 "$ms" 4000 "time to close (ms)"
}

# second_head_timing PORT PIPELINED: first request, then half a second head (in the same write
# when PIPELINED=1, else after the first response); prints the responses' status lines and the
# time from the half head to the close
second_head_timing() {
	timeout 20 "$PYTHON" - "$1" "$2" <<'PY'
import socket, sys, time
port, pipelined = int(sys.argv[1]), sys.argv[2] == "1"
first = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
half = b"GET /second HTTP/1.1\r\nHost: x\r\n"
s = socket.create_connection(("127.0.0.1", port), timeout=15)
data = b""
if pipelined:
    s.sendall(first + half)
    t0 = time.monotonic()
else:
    s.sendall(first)
    while not data.endswith(b"\r\n\r\no\n"):
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.sendall(half)
    t0 = time.monotonic()
while True:
    try:
        d = s.recv(4096)
    except socket.timeout:
        print("no close within 15 s")
        break
    except ConnectionResetError:
        break
    if not d:
        break
    data += d
ms = int((time.monotonic() - t0) * 1000)
print(" | ".join(l.decode().rstrip("\r") for l in data.split(b"\n") if l.startswith(b"HTTP/1.1")))
print(f"closed_after_ms={ms}")
PY
}

@test "timeouts: header timeout on the second request of a keep-alive connection -> 408" {
	start_origin o
	start_spliced "global { timeout header 1s; timeout idle 10s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	run second_head_timing "$SPLICED_PORT" 0
	echo "$output"
	assert_equal "HTTP/1.1 200 OK | HTTP/1.1 408 Request Timeout" "${lines[0]}" "responses"
	local ms=${lines[1]#closed_after_ms=}
	assert_between 800 "$ms" 3500 "time from the half head to the close (ms)"
	assert_equal "GET /first" "$(cat "$(origin_log o)")"
}

@test "timeouts: header timeout applies to half a head pipelined behind a request" {
	start_origin o
	start_spliced "global { timeout header 1s; timeout idle 5s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	run second_head_timing "$SPLICED_PORT" 1
	echo "$output"
	[[ ${lines[0]} == "HTTP/1.1 200 OK"* ]] || fail "first request not served"
	local ms=${lines[1]#closed_after_ms=}
	# the header timeout (1 s), not the idle timeout (5 s), bounds an incomplete head
	assert_between 800 "$ms" 3500 "time from the half head to the close (ms)"
}

@test "timeouts: per-pool timeout server: a report pool waits, the API pool next to it gives up" {
	start_origin o
	start_spliced "global { timeout server 10s; }
listener web { bind 127.0.0.1:@PORT@;
	route { host api.test; pool api; } route { host reports.test; pool reports; } }
pool api { timeout server 300ms; timeout connect 1s; retry_on connect_failure;
	server o 127.0.0.1:$ORIGIN_PORT; }
pool reports { timeout server 5s; server o 127.0.0.1:$ORIGIN_PORT; }"
	local t0 code ms
	t0=$(now_ms)
	code=$(http_code "$(url '/slow?ms=1200')" -H 'Host: api.test')
	ms=$(($(now_ms) - t0))
	echo "api: $code in $ms ms"
	assert_equal 504 "$code" "api pool past its 300 ms"
	assert_between 250 "$ms" 1100 "time to the 504 (ms)"
	code=$(http_code "$(url '/slow?ms=1200')" -H 'Host: reports.test')
	assert_equal 200 "$code" "reports pool within its 5 s"
	# fast requests pass on both
	assert_equal 200 "$(http_code "$(url /fast)" -H 'Host: api.test')"
}
