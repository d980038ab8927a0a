#!/usr/bin/env bats
# websocket.bats - Upgrade to a tunnel: the 101 handshake, bytes both ways, half-close, and
# plain HTTP half-close.

load helpers

ws_setup() {
	start_origin ws
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server ws 127.0.0.1:$ORIGIN_PORT; }"
}

@test "websocket: upgrade and echo 1 MiB" {
	ws_setup
	run timeout 60 "$PYTHON" "$RAWCLIENT" 127.0.0.1 "$SPLICED_PORT" --ws-echo 1048576 --timeout 30
	echo "$output"
	[ "$status" -eq 0 ]
	assert_equal "status=101 echo=ok bytes=1048576" "$output"
	wait_lines "$ACCESS_LOG" 1 5
	grep -q 'status=101 .*backend=p/ws ' "$ACCESS_LOG" || fail "access log lacks the 101 tunnel"
}

@test "websocket: upgrade and echo 32 MiB" {
	ws_setup
	run timeout 60 "$PYTHON" "$RAWCLIENT" 127.0.0.1 "$SPLICED_PORT" --ws-echo 33554432 --timeout 40
	echo "$output"
	[ "$status" -eq 0 ]
	assert_equal "status=101 echo=ok bytes=33554432" "$output"
}

@test "websocket: half-close after the echo: the tunnel finishes and closes" {
	ws_setup
	run timeout 60 "$PYTHON" "$RAWCLIENT" 127.0.0.1 "$SPLICED_PORT" --ws-echo 1048576 \
		--half-close --timeout 20
	echo "$output"
	[ "$status" -eq 0 ]
	assert_equal "status=101 echo=ok bytes=1048576" "$output"
}

@test "websocket: the 101 response carries the upgrade headers through the proxy" {
	ws_setup
	printf '%s' $'GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' \
		$'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' \
		$'hello tunnel' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --half-close --timeout 10 --expect-close
	local out
	out=$(tr -d '\r' <"$RAW_OUT")
	echo "$out"
	[ "$RAW_RC" -eq 0 ] || fail "tunnel not closed after the client's half-close"
	assert_contains "$out" "HTTP/1.1 101 Switching Protocols"
	assert_contains "$out" "Upgrade: websocket"
	grep -qi '^connection: upgrade$' <<<"$out" || fail "Connection: upgrade missing"
	assert_contains "$out" "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
	# bytes sent right behind the head came back through the tunnel
	assert_contains "$out" "hello tunnel"
}

@test "websocket: an upgrade request reaches the origin with Upgrade and Connection: upgrade" {
	start_origin plain
	# /echo on an origin that does not upgrade: the request head as it was forwarded
	start_spliced "listener web { bind 127.0.0.1:@PORT@; upgrade_protocols websocket h2c;
	route { pool p; } }
pool p { server s 127.0.0.1:$ORIGIN_PORT; }"
	# h2c is allowed here; the origin answers /echo normally
	run "${CURL[@]}" -H 'Upgrade: h2c' -H 'Connection: Upgrade, HTTP2-Settings' \
		-H 'HTTP2-Settings: AAMAAABkAAQAAP__' "$(url /echo)"
	echo "$output"
	local body=${output//$'\r'/}
	grep -qi '^upgrade: h2c$' <<<"$body" || fail "Upgrade header not forwarded"
	grep -qi '^connection: upgrade, HTTP2-Settings$' <<<"$body" ||
		fail "Connection: upgrade, HTTP2-Settings not forwarded"
	grep -qi '^http2-settings: AAMAAABkAAQAAP__$' <<<"$body" || fail "HTTP2-Settings dropped"
}

# upgrade_setup [LISTENER_STATEMENTS]: origin "o", one default route unless the text has routes
upgrade_setup() {
	local routes='route { pool p; }'
	[[ -n ${1:-} ]] && routes=$1
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; $routes }
pool p { server s 127.0.0.1:$ORIGIN_PORT; }"
}

# forwarded_head UPGRADE [HOST]: the head the origin received (its /echo) for a request with
# this Upgrade value and Connection: Upgrade, HTTP2-Settings
forwarded_head() {
	"${CURL[@]}" -H "Upgrade: $1" -H 'Connection: Upgrade, HTTP2-Settings' \
		-H 'HTTP2-Settings: AAMAAABkAAQAAP__' -H "Host: ${2:-x.test}" "$(url /echo)" |
		tr -d '\r'
}

@test "websocket: Upgrade to anything but websocket is stripped by default" {
	upgrade_setup
	local body
	body=$(forwarded_head h2c)
	echo "$body"
	assert_contains "$body" "GET /echo HTTP/1.1"
	if grep -qi '^upgrade:' <<<"$body"; then fail "Upgrade: h2c forwarded"; fi
	if grep -qi '^http2-settings:' <<<"$body"; then fail "HTTP2-Settings forwarded"; fi
	if grep -qi '^connection:.*upgrade' <<<"$body"; then fail "still an upgrade request"; fi
}

@test "websocket: a mixed Upgrade list goes on as its websocket element only" {
	upgrade_setup
	printf '%s' $'GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: h2c, websocket, foo/2\r\n' \
		$'Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n' \
		$'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' \
		$'ping' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --half-close --timeout 10 --expect-close
	local out
	out=$(tr -d '\r' <"$RAW_OUT")
	echo "$out"
	assert_contains "$out" "HTTP/1.1 101 Switching Protocols"
	assert_contains "$out" "Upgrade: websocket"
	assert_contains "$out" "ping"
}

@test "websocket: upgrade_protocols per listener and per route" {
	upgrade_setup "upgrade_protocols h2c;
	route { host ws.test; upgrade_protocols websocket; pool p; }
	route { host none.test; upgrade_protocols none; pool p; }
	route { pool p; }"
	local body
	# the listener's list: h2c, and no longer websocket
	body=$(forwarded_head 'h2c, websocket')
	echo "$body"
	grep -qx 'Upgrade: h2c' <<<"$body" || fail "listener: h2c not forwarded alone"
	grep -qx 'Connection: upgrade, HTTP2-Settings' <<<"$body" || fail "listener: Connection"
	grep -qx 'HTTP2-Settings: AAMAAABkAAQAAP__' <<<"$body" || fail "listener: HTTP2-Settings"
	# a route's own list replaces the listener's: h2c goes, HTTP2-Settings with it
	body=$(forwarded_head h2c ws.test)
	echo "$body"
	assert_contains "$body" "GET /echo HTTP/1.1"
	if grep -qi '^upgrade:\|^http2-settings:' <<<"$body"; then fail "ws.test: h2c forwarded"; fi
	# none: no upgrade at all
	body=$(forwarded_head h2c none.test)
	echo "$body"
	assert_contains "$body" "GET /echo HTTP/1.1"
	if grep -qi '^upgrade:\|^http2-settings:' <<<"$body"; then fail "none.test: forwarded"; fi
	run timeout 60 "$PYTHON" "$RAWCLIENT" 127.0.0.1 "$SPLICED_PORT" --ws-echo 1000 \
		--host ws.test --timeout 10
	echo "$output"
	assert_equal "status=101 echo=ok bytes=1000" "$output" "websocket on ws.test"
}

# switch_status UPGRADE|"" PATH: the status line a client sees when the origin answers PATH
# (.../switch/PROTO) with a 101 to PROTO; what it got is in $BATS_TEST_TMPDIR/raw.out
switch_status() {
	local up=""
	[[ -n $1 ]] && up=$'Upgrade: '"$1"$'\r\nConnection: Upgrade\r\n'
	printf 'GET %s HTTP/1.1\r\nHost: x\r\n%s\r\nhello' "$2" "$up" >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --half-close --timeout 10 --expect-close
	head -n 1 "$RAW_OUT" | tr -d '\r'
}

@test "websocket: a 101 to a protocol the request did not ask for is a 502" {
	upgrade_setup "route { path /h2c/; upgrade_protocols websocket h2c; pool p; }
	route { pool p; }"
	# asked for websocket, switched to h2c
	assert_equal "HTTP/1.1 502 Bad Gateway" "$(switch_status websocket /switch/h2c)"
	assert_not_contains "$(cat "$BATS_TEST_TMPDIR/raw.out")" "hello" "what the client got"
	# asked for h2c where it is not allowed: forwarded without Upgrade, so no 101 may come
	assert_equal "HTTP/1.1 502 Bad Gateway" "$(switch_status h2c /switch/h2c)"
	# asked for nothing
	assert_equal "HTTP/1.1 502 Bad Gateway" "$(switch_status "" /switch/websocket)"
	# asked for h2c where it is allowed: the tunnel works
	assert_equal "HTTP/1.1 101 Switching Protocols" "$(switch_status h2c /h2c/switch/h2c)"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/raw.out")" "hello" "echo through the h2c tunnel"
	assert_equal "HTTP/1.1 101 Switching Protocols" \
		"$(switch_status websocket /switch/websocket)"
	wait_lines "$ACCESS_LOG" 5
	[ "$(grep -c 'status=502 ' "$ACCESS_LOG")" -eq 3 ] || fail "three 502s in the access log"
	grep -q '101 to a protocol not asked for' "$SPLICED_ERR" || fail "no log line"
}

@test "websocket: plain HTTP request followed by half-close still gets its response" {
	ws_setup
	printf '%s' $'GET /size/100 HTTP/1.1\r\nHost: x\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --half-close --timeout 10 --expect-close
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed after the response to a half-closed client"
	run parse_responses "$RAW_OUT"
	echo "$output"
	[[ $output == "status=200 backend=ws connreq=1 len=100 "* ]] || fail "no complete response"
}

@test "websocket: upload body followed by half-close is delivered whole" {
	ws_setup
	{
		printf 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n'
		head -c 300000 /dev/zero
	} >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --half-close --timeout 10 --expect-close
	run parse_responses "$RAW_OUT"
	echo "$output"
	local sha
	sha=$(head -c 300000 /dev/zero | sha256sum | cut -d' ' -f1)
	[[ $output == "status=200 backend=ws connreq=1 len=72 body=b'${sha:0:60}"* ]] ||
		fail "upload digest"
}
