#!/usr/bin/env bats
# desync.bats - a response must only ever answer the request it belongs to. A server that
# speaks while no request is outstanding on its connection (an unsolicited response on an
# idle keep-alive connection, or bytes right after a response's last byte) must never have
# those bytes delivered to anyone: spliced closes that upstream connection, counts it
# (spliced_errors_total{reason="upstream_unsolicited"}) and sends the next request on a fresh
# one. With pool keepalive the danger crosses clients: a parked connection goes to another.
# And a response whose framing breaks before any byte of it reached the client is answered with
# spliced's own 502 instead of a silent close.

load helpers

INJECTOR="$E2E_ROOT/tests/origin/injector.py"

# start_injector MODE [POOL_EXTRA]: the misbehaving origin behind spliced, metrics on @PORT2@
start_injector() {
	INJ_PORT=$(free_port)
	"$PYTHON" "$INJECTOR" serve "$INJ_PORT" "$1" >"$BATS_TEST_TMPDIR/injector.out" 2>&1 &
	record_pid $! injector
	wait_until 5 _port_listening "$INJ_PORT"
	start_spliced "global { metrics 127.0.0.1:@PORT2@; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { ${2:-} server inj 127.0.0.1:$INJ_PORT; }"
}

# client DELAY PATH...: one keep-alive client connection, a GET per path
client() { "$PYTHON" "$INJECTOR" get "$SPLICED_PORT" "$@"; }

unsolicited_count() {
	"${CURL[@]}" "http://127.0.0.1:$SPLICED_PORT2/metrics" |
		awk '$1 == "spliced_errors_total{reason=\"upstream_unsolicited\"}" { print $2 }'
}

# every line of $out must be "PATH -> PATH - PATH": the answer to that request, nothing injected
all_answered_right() {
	local line p rest
	echo "$out"
	[[ -n $out ]] || fail "no responses"
	while read -r line; do
		p=${line%% *}
		rest=${line#* -> }
		[[ $rest == "$p - $p" ]] || fail "request $p got: $rest"
	done <<<"$out"
}

@test "desync: an unsolicited response on the client's kept upstream connection never reaches the next request" {
	start_injector late
	out=$(client 0.6 /a /b /c)
	all_answered_right
	# each injection closed the connection it came on: three upstream connections
	[[ $(grep -c '^conn ' "$BATS_TEST_TMPDIR/injector.out") -eq 3 ]] ||
		fail "expected 3 upstream connections, got $(grep -c '^conn ' "$BATS_TEST_TMPDIR/injector.out")"
	[[ $(unsolicited_count) -ge 2 ]] || fail "unsolicited responses counted: $(unsolicited_count)"
}

@test "desync: an unsolicited response on a parked connection never reaches another client" {
	start_injector late "keepalive 4;"
	local i
	for i in 1 2 3 4 5; do
		# a new client connection each time: the previous one's upstream was parked
		out=$(client 0 /client$i)
		all_answered_right
		sleep 0.5
	done
	[[ $(unsolicited_count) -ge 4 ]] || fail "unsolicited responses counted: $(unsolicited_count)"
}

@test "desync: bytes right after a response's last byte are dropped with the connection (kept and parked)" {
	start_injector same "keepalive 4;"
	out=$(client 0 /a /b /c)
	all_answered_right
	out=$(client 0.2 /d /e)
	all_answered_right
	local i
	for i in 1 2 3; do
		out=$(client 0 /n$i)
		all_answered_right
	done
	[[ $(unsolicited_count) -ge 8 ]] || fail "unsolicited responses counted: $(unsolicited_count)"
}

@test "desync: a well-behaved keep-alive origin keeps its connections (no false alarm)" {
	start_origin o
	start_spliced "global { metrics 127.0.0.1:@PORT2@; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { keepalive 4; server o 127.0.0.1:$ORIGIN_PORT; }"
	local h
	h=$("${CURL[@]}" -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} ' "$(url /1)" "$(url /2)" "$(url /3)")
	assert_equal "200 200 200 " "$h" "statuses"
	[[ $(unsolicited_count) -eq 0 ]] || fail "false alarm: $(unsolicited_count)"
}

# start_raw FILE: an origin that answers with FILE's bytes as they are, behind spliced
start_raw() {
	RAW_PORT=$(free_port)
	"$PYTHON" "$E2E_ROOT/tests/origin/raw_origin.py" "$RAW_PORT" "$1" >"$BATS_TEST_TMPDIR/raw_origin.out" 2>&1 &
	record_pid $! raw-origin
	wait_until 5 _port_listening "$RAW_PORT"
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server raw 127.0.0.1:$RAW_PORT; }"
}

# broken_gets_502 NAME: the response in $BATS_TEST_TMPDIR/resp has broken chunk framing that
# shows before any byte could go to the client: the client gets spliced's 502, and it is logged
broken_gets_502() {
	start_raw "$BATS_TEST_TMPDIR/resp"
	local code
	code=$("${CURL[@]}" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$(url /x)") || true
	echo "$1: status $code, body: $(head -c 100 "$BATS_TEST_TMPDIR/body")"
	assert_equal 502 "$code" "$1"
	wait_lines "$ACCESS_LOG" 1
	grep -q 'status=502' "$ACCESS_LOG" || fail "access log: $(cat "$ACCESS_LOG")"
	grep -q 'broke the response body' "$SPLICED_ERR" || fail "reason not logged"
}

@test "desync: a chunked response with a 40 KB trailer is answered with 502" {
	{
		printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: '
		head -c 40000 /dev/zero | tr '\0' a
		printf '\r\n\r\n'
	} >"$BATS_TEST_TMPDIR/resp"
	broken_gets_502 "40 KB trailer"
}

@test "desync: a chunked response with a 40 KB chunk extension is answered with 502" {
	{
		printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext='
		head -c 40000 /dev/zero | tr '\0' a
		printf '\r\nhello\r\n0\r\n\r\n'
	} >"$BATS_TEST_TMPDIR/resp"
	broken_gets_502 "40 KB chunk extension"
}

@test "desync: a chunk size that overflows is answered with 502" {
	printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n' >"$BATS_TEST_TMPDIR/resp"
	broken_gets_502 "overflowing chunk size"
}
