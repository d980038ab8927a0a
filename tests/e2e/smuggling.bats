#!/usr/bin/env bats
# smuggling.bats - request shapes that two HTTP parsers could read differently. Each must be
# refused by spliced itself (400, or 431/501/505 where that is the precise answer), the
# connection must be closed after the answer, and the origin must never see the request (nor
# anything smuggled behind it).

load helpers

setup() {
	e2e_bins
	: >"$BATS_TEST_TMPDIR/.pids"
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
}

SMUGGLED=$'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'

# refused STATUS: send $BATS_TEST_TMPDIR/req, expect spliced's STATUS answer and a close, and an
# origin that saw nothing
refused() {
	local want=$1 first body
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	first=$(head -n 1 "$RAW_OUT" | tr -d '\r')
	body=$(tr -d '\r' <"$RAW_OUT" | sed '1,/^$/d')
	echo "response: $first / body: $body / rawclient rc=$RAW_RC"
	[[ $first == "HTTP/1.1 $want "* ]] || fail "expected a $want status line, got: $first"
	[[ $body == "$want "* ]] || fail "expected spliced's own '$want ...' body, got: $body"
	assert_not_contains "$(cat "$RAW_OUT")" "X-Backend" "response"
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed after the $want"
	sleep 0.1
	if [[ -s $(origin_log o) ]]; then
		echo "origin saw:"
		cat "$(origin_log o)"
		fail "the origin received the request"
	fi
	wait_lines "$ACCESS_LOG" 1
	grep -q "status=$want " "$ACCESS_LOG" || fail "no status=$want line in the access log"
}

# req STRING...: the raw request bytes (printf %s of each argument, no newline added)
req() {
	printf '%s' "$@" >"$BATS_TEST_TMPDIR/req"
}

@test "smuggling: Content-Length together with Transfer-Encoding -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n' \
		$'0\r\n\r\n' "$SMUGGLED"
	refused 400
}

@test "smuggling: Transfer-Encoding before Content-Length -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n' \
		$'0\r\n\r\n' "$SMUGGLED"
	refused 400
}

@test "smuggling: duplicate Content-Length (equal values) -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'
	refused 400
}

@test "smuggling: duplicate Content-Length (different values) -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 42\r\n\r\nhello' \
		"$SMUGGLED"
	refused 400
}

@test "smuggling: Content-Length as a list '5, 5' -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello'
	refused 400
}

@test "smuggling: Content-Length with a sign '+5' -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello'
	refused 400
}

@test "smuggling: negative Content-Length -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'
	refused 400
}

@test "smuggling: Content-Length that overflows 64 bits -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551621\r\n\r\nhello'
	refused 400
}

@test "smuggling: Transfer-Encoding 'chunked, gzip' (chunked not last) -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n' "$SMUGGLED"
	refused 400
}

@test "smuggling: Transfer-Encoding 'gzip' alone -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n' "$SMUGGLED"
	refused 400
}

@test "smuggling: Transfer-Encoding 'gzip, chunked' (coding not understood) -> 501" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'
	refused 501
}

@test "smuggling: chunked listed twice -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n' \
		$'0\r\n\r\n' "$SMUGGLED"
	refused 400
}

@test "smuggling: 'chunked, chunked' in one field -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n'
	refused 400
}

@test "smuggling: Transfer-Encoding in HTTP/1.0 -> 400" {
	req $'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
	refused 400
}

@test "smuggling: obs-fold (continuation line) -> 400" {
	req $'GET / HTTP/1.1\r\nHost: x\r\nX-Long: first\r\n second\r\n\r\n'
	refused 400
}

@test "smuggling: obs-fold hiding Transfer-Encoding -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A: a\r\n\tTransfer-Encoding: chunked\r\n\r\nhello'
	refused 400
}

@test "smuggling: whitespace between field name and colon -> 400" {
	req $'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello'
	refused 400
}

@test "smuggling: whitespace before the first header line -> 400" {
	req $'GET / HTTP/1.1\r\n Host: x\r\n\r\n'
	refused 400
}

@test "smuggling: bare LF line endings -> 400" {
	req $'GET / HTTP/1.1\nHost: x\n\n'
	refused 400
}

@test "smuggling: bare LF inside the head -> 400" {
	req $'GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n'
	refused 400
}

@test "smuggling: bare CR -> 400" {
	req $'GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n'
	refused 400
}

@test "smuggling: missing Host in HTTP/1.1 -> 400" {
	req $'GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n'
	refused 400
}

@test "smuggling: two Host headers -> 400" {
	req $'GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n'
	refused 400
}

@test "smuggling: Host with userinfo -> 400" {
	req $'GET / HTTP/1.1\r\nHost: user@evil.test\r\n\r\n'
	refused 400
}

@test "smuggling: control character in a header value -> 400" {
	req $'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n'
	refused 400
}

@test "smuggling: DEL in a header value -> 400" {
	req $'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n'
	refused 400
}

@test "smuggling: NUL in the request line -> 400" {
	printf 'GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	refused 400
}

@test "smuggling: NUL in a header value -> 400" {
	printf 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	refused 400
}

@test "smuggling: two spaces in the request line -> 400" {
	req $'GET  / HTTP/1.1\r\nHost: x\r\n\r\n'
	refused 400
}

@test "smuggling: invalid chunk size 'zz' -> 400, nothing smuggled reaches the origin" {
	req $'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n' \
		"$SMUGGLED"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	local first
	first=$(head -n 1 "$RAW_OUT" | tr -d '\r')
	echo "response: $first rc=$RAW_RC"
	assert_equal "HTTP/1.1 400 Bad Request" "$first"
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed after the 400"
	sleep 0.1
	cat "$(origin_log o)"
	if grep -q smuggled "$(origin_log o)"; then fail "the smuggled request reached the origin"; fi
	# the body framing is checked before any byte of it goes upstream, so nothing was
	# forwarded at all
	[ ! -s "$(origin_log o)" ] || fail "the origin received the rejected request"
}

@test "smuggling: chunk size overflowing 64 bits -> 400, nothing smuggled reaches the origin" {
	req $'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' \
		$'10000000000000005\r\nhello\r\n0\r\n\r\n' "$SMUGGLED"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	local first
	first=$(head -n 1 "$RAW_OUT" | tr -d '\r')
	echo "response: $first rc=$RAW_RC"
	assert_equal "HTTP/1.1 400 Bad Request" "$first"
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed after the 400"
	sleep 0.1
	cat "$(origin_log o)"
	if grep -q smuggled "$(origin_log o)"; then fail "the smuggled request reached the origin"; fi
	[ ! -s "$(origin_log o)" ] || fail "the origin received the rejected request"
}

@test "smuggling: chunk data longer than its size -> 400, nothing smuggled reaches the origin" {
	req $'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' \
		$'3\r\nhello\r\n0\r\n\r\n' "$SMUGGLED"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	local first
	first=$(head -n 1 "$RAW_OUT" | tr -d '\r')
	echo "response: $first rc=$RAW_RC"
	assert_equal "HTTP/1.1 400 Bad Request" "$first"
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed after the 400"
	sleep 0.1
	if grep -q smuggled "$(origin_log o)"; then fail "the smuggled request reached the origin"; fi
}

@test "smuggling: oversized head -> 431" {
	{
		printf 'GET / HTTP/1.1\r\nHost: x\r\n'
		for i in $(seq 1 40); do printf 'X-Pad-%02d: %0500d\r\n' "$i" 0; done
		printf '\r\n'
	} >"$BATS_TEST_TMPDIR/req"
	refused 431
}

@test "smuggling: HTTP/2.0 request line -> 505" {
	req $'GET / HTTP/2.0\r\nHost: x\r\n\r\n'
	refused 505
}

@test "smuggling: HTTP/1.2 -> 505" {
	req $'GET / HTTP/1.2\r\nHost: x\r\n\r\n'
	refused 505
}

@test "smuggling: garbage request line -> 400" {
	req $'HELLO THERE\r\n\r\n'
	refused 400
}

@test "smuggling: TLS ClientHello on the plain port -> 400 at once" {
	printf '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' >"$BATS_TEST_TMPDIR/req"
	refused 400
}

@test "smuggling: a valid request before a smuggling shape is served, then 400 and close" {
	req $'GET /first HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' \
		"$SMUGGLED"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	run parse_responses "$RAW_OUT"
	echo "$output"
	[ "$RAW_RC" -eq 0 ] || fail "connection not closed"
	[[ ${lines[0]} == "status=200 backend=o connreq=1 "* ]] || fail "first request not served"
	[[ ${lines[1]} == "status=400 backend=- "* ]] || fail "second request not refused by spliced"
	[ "${#lines[@]}" -eq 2 ] || fail "nothing may follow the 400"
	sleep 0.1
	assert_equal "GET /first" "$(cat "$(origin_log o)")" "origin request log"
}

@test "smuggling: 'Transfer-Encoding: chunked,' reaches the origin as exactly 'chunked'" {
	# RFC 9110 lists allow the empty element, but a backend may not: it would then read the
	# body as the next request. Every spelling goes out as one canonical line.
	local te body
	for te in 'chunked,' ', chunked' 'Chunked' $'chunked\r\nTransfer-Encoding: ,'; do
		req "POST /echo HTTP/1.1"$'\r\nHost: x\r\n'"Transfer-Encoding: $te"$'\r\n' \
			$'Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
		raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
		body=$(tr -d '\r' <"$RAW_OUT" | sed '1,/^$/d')
		echo "TE '$te' forwarded as:"
		echo "$body"
		assert_equal "HTTP/1.1 200 OK" "$(head -n 1 "$RAW_OUT" | tr -d '\r')" "status"
		[ "$(grep -ci '^transfer-encoding:' <<<"$body")" -eq 1 ] || fail "one TE line"
		grep -qx 'Transfer-Encoding: chunked' <<<"$body" || fail "TE not exactly chunked"
	done
}

@test "smuggling: a path that climbs above the root -> 400" {
	req $'GET /a/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n'
	refused 400
}

@test "smuggling: a dot segment with parameters '..;/' -> 400" {
	req $'GET /a/..;/admin HTTP/1.1\r\nHost: x\r\n\r\n'
	refused 400
}

@test "smuggling: an encoded slash '%2F' in the path -> 400" {
	req $'GET /a/..%2Fadmin HTTP/1.1\r\nHost: x\r\n\r\n'
	refused 400
}

@test "smuggling: a backslash in the path -> 400" {
	req $'GET /a/..\\admin HTTP/1.1\r\nHost: x\r\n\r\n'
	refused 400
}

@test "smuggling: an encoded NUL in the path -> 400" {
	req $'GET /a%00.html HTTP/1.1\r\nHost: x\r\n\r\n'
	refused 400
}

@test "smuggling: a fragment in the target -> 400" {
	req $'GET /a#/../admin HTTP/1.1\r\nHost: x\r\n\r\n'
	refused 400
}

@test "smuggling: a target longer than 8 KiB -> 414" {
	{
		printf 'GET /'
		head -c 8192 /dev/zero | tr '\0' a
		printf ' HTTP/1.1\r\nHost: x\r\n\r\n'
	} >"$BATS_TEST_TMPDIR/req"
	refused 414
}
