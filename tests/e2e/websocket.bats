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
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server s 127.0.0.1:$ORIGIN_PORT; }"
	# Upgrade: h2c is not a websocket, so the origin answers /echo normally
	run "${CURL[@]}" -H 'Upgrade: h2c' -H 'Connection: Upgrade' "$(url /echo)"
	echo "$output"
	local body=${output//$'\r'/}
	grep -qi '^upgrade: h2c$' <<<"$body" || fail "Upgrade header not forwarded"
	grep -qi '^connection: upgrade$' <<<"$body" || fail "Connection: upgrade not forwarded"
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
