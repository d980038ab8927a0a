#!/usr/bin/env bats
# request_limits.bats - request limits against real backends: max_body_size (413 from
# Content-Length before the backend is contacted; a chunked body cut when it grows past it,
# the upstream connection discarded; a route's limit replacing its listener's), max_uri_length
# (414), max_headers (431), underscore_headers drop|reject|pass; every refusal counted and
# logged with its reason.

load helpers

eval "$(declare -f setup | sed '1s/^setup/e2e_setup/')"
setup() {
	e2e_setup
	CTL_SOCK=$BATS_TEST_TMPDIR/ctl.sock
	start_origin a
}

# stat NAME: a counter of `show stats`
stat() {
	"$E2E_ROOT/.output/splicectl" -s "$CTL_SOCK" show stats | awk -v n="$1" '$1 == n { print $2 }'
}

# post_code PATH FILE [curl args]: status of a POST of FILE
post_code() {
	local p=$1 f=$2
	shift 2
	"${CURL[@]}" -o /dev/null -w '%{http_code}' --data-binary "@$f" "$@" "$(url "$p")" || true
}

@test "request limits: max_body_size by Content-Length (413, no backend) and chunked (cut)" {
	start_spliced "global { control $CTL_SOCK; }
listener web {
	bind 127.0.0.1:@PORT@;
	max_body_size 1k;
	route big { path /big; max_body_size 0; pool pa; }
	route r { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	head -c 1024 /dev/zero >"$BATS_TEST_TMPDIR/1k"
	head -c 1025 /dev/zero >"$BATS_TEST_TMPDIR/1k1"
	head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/300k"
	assert_equal 200 "$(post_code /upload "$BATS_TEST_TMPDIR/1k")" "exactly the limit"
	assert_equal 413 "$(post_code /upload "$BATS_TEST_TMPDIR/1k1")" "one byte over"
	assert_equal 413 "$(post_code /upload "$BATS_TEST_TMPDIR/300k" -H 'Expect: 100-continue')" \
		"Expect: 100-continue answered 413 at once"
	assert_equal 200 "$(post_code /big/upload "$BATS_TEST_TMPDIR/300k")" "the route's 0: no limit"
	# Content-Length refusals never reached the backend
	assert_equal 1 "$(grep -c '^POST /upload' "$(origin_log a)")" "POSTs the backend saw"
	# chunked: a small body passes, a growing one is cut with 413
	assert_equal 200 "$(post_code /upload "$BATS_TEST_TMPDIR/1k" -H 'Transfer-Encoding: chunked')" \
		"chunked within the limit"
	assert_equal 413 "$(post_code /upload "$BATS_TEST_TMPDIR/300k" -H 'Transfer-Encoding: chunked')" \
		"chunked past the limit"
	assert_equal 200 "$(post_code /big/upload "$BATS_TEST_TMPDIR/300k" -H 'Transfer-Encoding: chunked')" \
		"chunked, no limit"
	# the daemon serves on; the cut upstream connection was not reused for this one
	assert_equal 200 "$(http_code "$(url /size/10)")" "next request"
	assert_equal 3 "$(stat errors.too_large_413)" "413 counted"
	wait_lines "$ACCESS_LOG" 8
	assert_equal 3 "$(grep -c 'status=413 .*refused=body_too_large' "$ACCESS_LOG")" "413 logged"
}

@test "request limits: max_uri_length 414, max_headers 431" {
	start_spliced "global { control $CTL_SOCK; }
listener web {
	bind 127.0.0.1:@PORT@;
	max_uri_length 64;
	max_headers 6;
	route r { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	long=/$(printf 'x%.0s' {1..63})
	assert_equal 200 "$(http_code "$(url "$long")")" "64 bytes"
	assert_equal 414 "$(http_code "$(url "${long}y")")" "65 bytes"
	assert_equal 414 "$(http_code "$(url "/?$(printf 'q%.0s' {1..70})")")" "the query counts"
	# curl sends Host, User-Agent and Accept
	assert_equal 200 "$(http_code "$(url /)" -H 'A: 1' -H 'B: 2' -H 'C: 3')" "6 headers"
	assert_equal 431 "$(http_code "$(url /)" -H 'A: 1' -H 'B: 2' -H 'C: 3' -H 'D: 4')" "7 headers"
	assert_equal 2 "$(stat errors.uri_too_long_414)" "414 counted"
	assert_equal 1 "$(stat errors.header_too_large_431)" "431 counted"
	wait_lines "$ACCESS_LOG" 5
	grep -q 'status=414 .*refused=uri_too_long' "$ACCESS_LOG" || fail "$(cat "$ACCESS_LOG")"
	grep -q 'status=431 .*refused=too_many_headers' "$ACCESS_LOG" || fail "$(cat "$ACCESS_LOG")"
	assert_equal 0 "$(grep -c xxxxxxxxy "$(origin_log a)")" "the long target reached the backend"
}

@test "request limits: underscore_headers drop (default), reject, pass" {
	start_spliced "global { control $CTL_SOCK; }
listener dflt { bind 127.0.0.1:@PORT@; route { pool pa; } }
listener rej { bind 127.0.0.1:@PORT2@; underscore_headers reject; route { pool pa; } }
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	body=$("${CURL[@]}" -H 'Content_Length: 5' -H 'X_Real: 1' -H 'X-Ok: 1' "$(url /echo)")
	assert_not_contains "$body" "Content_Length" "dropped"
	assert_not_contains "$body" "X_Real" "dropped"
	assert_contains "$body" "X-Ok: 1" "other headers stay"
	assert_equal 2 "$(stat errors.underscore_dropped)" "drops counted"
	assert_equal 400 "$(http_code "$(url /echo "$SPLICED_PORT2")" -H 'X_Real: 1')" "reject"
	assert_equal 200 "$(http_code "$(url /echo "$SPLICED_PORT2")" -H 'X-Real: 1')" "no underscore"
	assert_equal 1 "$(stat errors.underscore_header)" "rejects counted"
	wait_lines "$ACCESS_LOG" 3
	grep -q 'status=400 .*refused=underscore_header' "$ACCESS_LOG" || fail "$(cat "$ACCESS_LOG")"
	# pass: a reload of the default listener
	sed -i 's|listener dflt { bind|listener dflt { underscore_headers pass; bind|' "$SPLICED_CONF"
	kill -HUP "$SPLICED_PID"
	wait_until 5 grep -q 'reloaded: generation 2' "$SPLICED_ERR"
	body=$("${CURL[@]}" -H 'X_Real: 1' "$(url /echo)")
	assert_contains "$body" "X_Real: 1" "passed"
}
