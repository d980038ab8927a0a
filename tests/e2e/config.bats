#!/usr/bin/env bats
# config.bats - the configuration language as a user meets it: `spliced -n`, error reports with
# FILE:LINE, bounds that keep a hostile file from crashing -n or a reload, and address forms
# (host names, IPv6) that must work end to end.

load helpers

# check_config TEXT: write TEXT to $CONF and run `spliced -n -f $CONF` (output in $output)
check_config() {
	CONF="$BATS_TEST_TMPDIR/check.conf"
	printf '%s\n' "$1" >"$CONF"
	run timeout 20 "$SPLICED_BIN" -n -f "$CONF"
}

@test "config: -n accepts a valid configuration" {
	check_config "global {
	pin_path /sys/fs/bpf/spliced-tcheck;
	workers 2;
	access_log off;
	timeout header 5s;
	timeout idle 30s;
	timeout connect 500ms;
	timeout server 1m;
	timeout client 1m;
	timeout tunnel 1h;
	max_header_size 16k;
	max_connections 100;
	buffer_size 64k;
	pipe_size 256k;
	retries 2;
	fail_timeout 5s;
}
listener web {
	bind 127.0.0.1:18080;
	bind [::1]:18080;
	route { host example.com *.example.com; path /api; pool api; }
	route { pool web; }
	splice auto;
}
pool api {
	balance hash header X-User;
	server a 127.0.0.1:18081 weight 3;
	server b 127.0.0.1:18082;
	server c 127.0.0.1:18083 backup;
	connect_timeout 1s;
	retries 1;
	fail_timeout 2s;
}
pool web {
	balance least_conn;
	server w [::1]:18084;
}"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_contains "$output" "configuration OK"
	# -n must not start anything
	[ ! -d /sys/fs/bpf/spliced-tcheck ]
}

@test "config: several mistakes are all reported with FILE:LINE, exit status 1" {
	check_config "global {
	workers 2;
	frobnicate yes;
	timeout idle 10parsecs;
}
listener web {
	bind 127.0.0.1:18080;
	route { pool nosuch; }
}
pool p {
	server a 127.0.0.1:18081;
	server a 127.0.0.1:18082;
	retries 3
}"
	echo "$output"
	[ "$status" -eq 1 ]
	assert_not_contains "$output" "configuration OK"
	assert_contains "$output" "$CONF:3: " "unknown keyword (line 3)"
	assert_contains "$output" "frobnicate"
	assert_contains "$output" "$CONF:4: " "bad duration (line 4)"
	assert_contains "$output" "10parsecs"
	assert_contains "$output" "$CONF:12: " "duplicate server (line 12)"
	assert_contains "$output" "duplicate server"
	assert_contains "$output" "$CONF:13: " "missing ';' (line 13)"
	assert_contains "$output" "missing ';'"
	assert_contains "$output" "$CONF:8: " "route to an unknown pool (line 8)"
	assert_contains "$output" "nosuch"
}

@test "config: route to an unknown pool alone is reported with its line" {
	check_config "listener web {
	bind 127.0.0.1:18080;
	route { pool nosuch; }
}
pool p { server a 127.0.0.1:18081; }"
	echo "$output"
	[ "$status" -eq 1 ]
	assert_contains "$output" "$CONF:3: "
	assert_contains "$output" "nosuch"
}

@test "config: every error line has the FILE:LINE: form" {
	check_config "listener web {
	bind 127.0.0.1:99999;
	route { pool p; }
	splice sometimes;
}
pool p {
	balance fastest;
	server a 127.0.0.1:18081 weight heavy;
}"
	echo "$output"
	[ "$status" -eq 1 ]
	local n=0 line
	while IFS= read -r line; do
		[[ -z $line ]] && continue
		[[ $line =~ ^"$CONF":[0-9]+:\  ]] || fail "not FILE:LINE: message: $line"
		n=$((n + 1))
	done <<<"$output"
	[ "$n" -ge 4 ]
	assert_contains "$output" "$CONF:2: "
	assert_contains "$output" "$CONF:4: "
	assert_contains "$output" "$CONF:7: "
	assert_contains "$output" "$CONF:8: "
}

@test "config: an unresolvable server host name is reported" {
	check_config "listener web {
	bind 127.0.0.1:18080;
	route { pool p; }
}
pool p {
	server a no-such-host.invalid:8080;
}"
	echo "$output"
	[ "$status" -eq 1 ]
	assert_contains "$output" "$CONF:6: "
	assert_contains "$output" "no-such-host.invalid"
}

@test "config: a missing file is an error" {
	run timeout 20 "$SPLICED_BIN" -n -f "$BATS_TEST_TMPDIR/does-not-exist.conf"
	echo "$output"
	[ "$status" -ne 0 ]
	assert_contains "$output" "does-not-exist.conf"
}

@test "config: a server given by host name (localhost) works end to end" {
	start_origin named
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server a localhost:$ORIGIN_PORT; }"
	run "${CURL[@]}" "$(url /)"
	[ "$status" -eq 0 ]
	assert_equal "named" "$output" "body"
}

@test "config: IPv6 bind [::1] and IPv6 server ::1 end to end" {
	ip -6 addr show dev lo 2>/dev/null | grep -q '::1' || skip "no IPv6 loopback"
	start_origin six -a ::1
	start_spliced "listener web { bind [::1]:@PORT@; route { pool p; } }
pool p { server a [::1]:$ORIGIN_PORT; }"
	run "${CURL[@]}" -g "http://[::1]:$SPLICED_PORT/echo"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_contains "$output" "GET /echo HTTP/1.1"
	assert_contains "$output" "X-Forwarded-For: ::1"
	run "${CURL[@]}" -g -D - -o /dev/null "http://[::1]:$SPLICED_PORT/size/100k"
	assert_contains "$output" "X-Backend: six"
	wait_lines "$ACCESS_LOG" 2
	grep -q ' ::1 "GET /echo HTTP/1.1"' "$ACCESS_LOG" || fail "access log lacks ::1 client"
	# the listener is IPv6 only: nothing answers on 127.0.0.1 at that port
	run "${CURL[@]}" --max-time 3 "http://127.0.0.1:$SPLICED_PORT/"
	[ "$status" -ne 0 ]
}

@test "config: two listeners on their own ports route independently" {
	start_origin one
	start_origin two
	start_spliced "listener a { bind 127.0.0.1:@PORT@; route { pool one; } }
listener b { bind 127.0.0.1:@PORT2@; route { pool two; } }
pool one { server s 127.0.0.1:${ORIGIN_PORTS[one]}; }
pool two { server s 127.0.0.1:${ORIGIN_PORTS[two]}; }"
	assert_equal one "$("${CURL[@]}" "$(url /)")"
	assert_equal two "$("${CURL[@]}" "$(url / "$SPLICED_PORT2")")"
}

# the deep nesting of the hardening report: `x{` 100000 times on one line
deep_text() { "$PYTHON" -c "import sys; sys.stdout.write('x{' * 100000)"; }

@test "config: a deeply nested file is refused by -n with FILE:LINE, not a crash" {
	CONF="$BATS_TEST_TMPDIR/deep.conf"
	deep_text >"$CONF"
	run timeout 20 "$SPLICED_BIN" -n -f "$CONF"
	echo "${output:0:2000}"
	# 1: errors reported; a crash (139) or a timeout (124) fails here
	[ "$status" -eq 1 ]
	assert_contains "$output" "$CONF:1: blocks nested deeper than 8"
	assert_not_contains "$output" "configuration OK"
	# every line is a FILE:LINE: message, and there are few of them
	local n=0 line
	while IFS= read -r line; do
		[[ $line =~ ^"$CONF":[0-9]+:\  ]] || fail "not FILE:LINE: message: $line"
		n=$((n + 1))
	done <<<"$output"
	((n <= 101)) || fail "$n messages"
}

@test "config: SIGHUP with a deeply nested file fails the reload; the daemon keeps serving" {
	start_origin a
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server a 127.0.0.1:$ORIGIN_PORT; }"
	assert_equal a "$("${CURL[@]}" "$(url /before)")"
	# appended to the running configuration, as in the report
	deep_text >>"$SPLICED_CONF"
	kill -HUP "$SPLICED_PID"
	wait_until 10 grep -q 'reload of .* failed: still running generation 1' "$SPLICED_ERR" ||
		fail "no failed reload in the log: $(tail -c 2000 "$SPLICED_ERR")"
	grep -qE "reload: .*spliced.conf:[0-9]+: blocks nested deeper than 8" "$SPLICED_ERR" ||
		fail "no FILE:LINE message: $(grep reload "$SPLICED_ERR" | head -5)"
	kill -0 "$SPLICED_PID" || fail "the daemon died"
	for i in 1 2 3; do
		assert_equal a "$("${CURL[@]}" "$(url /after$i)")"
	done
}
