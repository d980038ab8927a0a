#!/usr/bin/env bats
# accesslog.bats - one line per request with client, host, request line, status, byte counts,
# pool/server and duration.

load helpers

# field LINE NAME: value of NAME=... in an access log line
field() {
	sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"
}

@test "accesslog: one line per request with every field" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { host only.test; pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	"${CURL[@]}" -o /dev/null -H 'Host: only.test' "$(url '/size/1000?x=1')"
	"${CURL[@]}" -o /dev/null -H 'Host: Only.Test:8080' -X POST --data-binary 'abc' "$(url /status/503)"
	"${CURL[@]}" -o /dev/null -H 'Host: other.test' "$(url /nowhere)"
	wait_lines "$ACCESS_LOG" 3
	sleep 0.2
	cat "$ACCESS_LOG"
	[ "$(file_lines "$ACCESS_LOG")" -eq 3 ]
	local l1 l2 l3
	l1=$(sed -n 1p "$ACCESS_LOG")
	l2=$(sed -n 2p "$ACCESS_LOG")
	l3=$(sed -n 3p "$ACCESS_LOG")
	# time, listener, client, request line
	[[ $l1 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\ web\ 127\.0\.0\.1\ \"GET\ /size/1000\?x=1\ HTTP/1\.1\"\  ]] ||
		fail "line 1 prefix: $l1"
	assert_equal only.test "$(field "$l1" host)"
	assert_equal 200 "$(field "$l1" status)"
	assert_equal p/o "$(field "$l1" backend)"
	# bytes_out: the 1000 body bytes plus the response head
	assert_between 1050 "$(field "$l1" bytes_out)" 1400 "bytes_out"
	assert_between 50 "$(field "$l1" bytes_in)" 400 "bytes_in"
	[[ $(field "$l1" duration_ms) =~ ^[0-9]+$ ]] || fail "duration_ms"

	[[ $l2 == *' "POST /status/503 HTTP/1.1" '* ]] || fail "line 2 request: $l2"
	assert_equal only.test "$(field "$l2" host)" "host (lower case, no port)"
	assert_equal 503 "$(field "$l2" status)" "status of an origin's 503"
	assert_equal p/o "$(field "$l2" backend)"
	# the 3 body bytes count as received
	local in2
	in2=$(field "$l2" bytes_in)
	[ "$in2" -gt 3 ]

	[[ $l3 == *' "GET /nowhere HTTP/1.1" '* ]] || fail "line 3 request: $l3"
	assert_equal other.test "$(field "$l3" host)"
	assert_equal 404 "$(field "$l3" status)"
	assert_equal -/- "$(field "$l3" backend)"
}

@test "accesslog: duration_ms reflects a slow origin" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	"${CURL[@]}" -o /dev/null "$(url '/slow?ms=400')"
	wait_lines "$ACCESS_LOG" 1
	cat "$ACCESS_LOG"
	assert_between 390 "$(field "$(cat "$ACCESS_LOG")" duration_ms)" 3000 "duration_ms"
}

@test "accesslog: keep-alive and pipelined requests each get their own line" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	printf '%s' $'GET /a HTTP/1.1\r\nHost: x\r\n\r\n' $'GET /size/10 HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	wait_lines "$ACCESS_LOG" 3
	sleep 0.2
	cat "$ACCESS_LOG"
	[ "$(file_lines "$ACCESS_LOG")" -eq 3 ]
	[[ $(sed -n 1p "$ACCESS_LOG") == *'"GET /a HTTP/1.1"'* ]]
	[[ $(sed -n 2p "$ACCESS_LOG") == *'"GET /size/10 HTTP/1.1"'* ]]
	[[ $(sed -n 3p "$ACCESS_LOG") == *'"GET /c HTTP/1.1"'* ]]
	# byte counts are per request, not per connection
	local b1 b2
	b1=$(field "$(sed -n 1p "$ACCESS_LOG")" bytes_out)
	b2=$(field "$(sed -n 2p "$ACCESS_LOG")" bytes_out)
	assert_between 100 "$b1" 300 "bytes_out of /a"
	assert_between 100 "$b2" 300 "bytes_out of /size/10"
}

@test "accesslog: a request refused by the parser is logged with its status" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	printf 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	wait_lines "$ACCESS_LOG" 1
	cat "$ACCESS_LOG"
	[ "$(file_lines "$ACCESS_LOG")" -eq 1 ]
	local l
	l=$(cat "$ACCESS_LOG")
	assert_equal 400 "$(field "$l" status)"
	assert_equal -/- "$(field "$l" backend)"
	[[ $l == *" web 127.0.0.1 "* ]] || fail "client address"
}

@test "accesslog: the refused second request of a connection logs its own byte counts" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	printf '%s' $'GET /size/5000 HTTP/1.1\r\nHost: x\r\n\r\n' \
		$'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 5 --expect-close
	wait_lines "$ACCESS_LOG" 2
	cat "$ACCESS_LOG"
	local l
	l=$(sed -n 2p "$ACCESS_LOG")
	assert_equal 400 "$(field "$l" status)"
	# the 5000-byte response belongs to the first line, not to the refused request
	assert_between 0 "$(field "$l" bytes_out)" 1000 "bytes_out of the refused request"
}

@test "accesslog: access_log off writes nothing, stderr goes to the daemon's stderr" {
	start_origin o
	ACCESS_LOG=off start_spliced "global { access_log off; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	"${CURL[@]}" -o /dev/null "$(url /off)"
	stop_pid "$SPLICED_PID"
	if grep -q '"GET /off' "$SPLICED_ERR"; then fail "access_log off still logged"; fi
	[ ! -e "$BATS_TEST_TMPDIR/off" ]

	start_spliced "global { access_log stderr; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	"${CURL[@]}" -o /dev/null "$(url /on-stderr)"
	wait_until 3 grep -q '"GET /on-stderr HTTP/1.1" .*status=200' "$SPLICED_ERR" ||
		fail "access_log stderr did not log to stderr"
}

@test "accesslog: requests that end early are logged and counted with a termination reason" {
	start_origin o
	start_spliced "global { timeout server 500ms; metrics 127.0.0.1:@PORT2@; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# the client goes away mid-response
	"${CURL[@]}" -o /dev/null --limit-rate 10M --max-time 1 "$(url /size/1g)" || true
	wait_lines "$ACCESS_LOG" 1
	# the request body ends early: 10 of 100000 announced bytes, then the client closes
	printf 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789' >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --timeout 1 --half-close || true
	wait_lines "$ACCESS_LOG" 2
	# the server stops after the response head: timeout server
	"${CURL[@]}" -o /dev/null "$(url '/size/1m?pause_ms=3000')" || true
	wait_lines "$ACCESS_LOG" 3
	cat "$ACCESS_LOG"
	local l1 l2 l3
	l1=$(grep ' "GET /size/1g ' "$ACCESS_LOG")
	l2=$(grep ' "POST /upload ' "$ACCESS_LOG")
	l3=$(grep ' "GET /size/1m' "$ACCESS_LOG")
	assert_equal 200 "$(field "$l1" status)" "aborted download: the status the server sent"
	assert_equal client_closed "$(field "$l1" term)" "aborted download"
	assert_between 1000000 "$(field "$l1" bytes_out)" 1000000000 "bytes_out of the aborted download"
	assert_equal client_closed "$(field "$l2" term)" "request body cut"
	assert_equal p/o "$(field "$l2" backend)"
	assert_equal server_timeout "$(field "$l3" term)" "server stalled mid-response"
	local m
	m=$("${CURL[@]}" "http://127.0.0.1:$SPLICED_PORT2/metrics")
	[[ $(awk '$1 == "spliced_errors_total{reason=\"client_aborted\"}" { print $2 }' <<<"$m") -eq 2 ]] ||
		fail "client_aborted: $(grep client_aborted <<<"$m")"
	[[ $(awk '$1 ~ /^spliced_requests_total\{listener="web",pool="p",code="200"\}$/ { print $2 }' <<<"$m") -eq 2 ]] ||
		fail "requests_total: $(grep requests_total <<<"$m")"
}

@test "accesslog: a FIFO nobody reads never holds a request; the lines that do not fit are dropped and counted" {
	local fifo=$BATS_TEST_TMPDIR/log.fifo holder long codes
	mkfifo "$fifo"
	# a reader that holds the FIFO open and never reads it
	(exec 3<>"$fifo" && exec sleep 120) &
	holder=$!
	record_pid "$holder" fifo-holder
	start_origin o
	ACCESS_LOG=$fifo start_spliced "global { access_log $fifo; metrics 127.0.0.1:@PORT2@; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# lines of ~400 bytes (the log keeps 255 bytes of a target): the FIFO (64 KiB) and the
	# daemon's buffer (1 MiB) are full after ~2800 of them
	long=$(printf 'a%.0s' {1..250})
	codes=$("${CURL[@]}" -o /dev/null -w '%{http_code}\n' "$(url "/$long?n=[1-4000]")" |
		sort | uniq -c | awk '{ print $1, $2 }')
	assert_equal "4000 200" "$codes" "every request answered"
	assert_equal 200 "$(http_code "$(url /after)")" "a request after the flood"
	local dropped
	dropped=$("${CURL[@]}" "http://127.0.0.1:$SPLICED_PORT2/metrics" |
		awk '$1 == "spliced_log_dropped_total" { print $2 }')
	echo "dropped: $dropped"
	assert_between 500 "${dropped:-0}" 4001 "spliced_log_dropped_total"
}

# hostile_corpus PORT: one request per connection with hostile bytes in the target or the Host
# header; prints "STATUS TARGET_HEX HOST_HEX" per request (STATUS 0: no answer)
hostile_corpus() {
	"$PYTHON" - "$1" <<'PY'
import socket, sys
port = int(sys.argv[1])
targets = [b"/plain", b'/q?a="b"&c=\\d', b"/back\\slash\\", b"/utf8-\xc3\xa9\xe2\x82\xac",
           b"/invalid-\xff\xfe\xc3", b"/ctl-\x01\x1b[31m", b"/del-\x7f", b"/nul-\x00x",
           b'/{"json":true,"a":[1]}', b"/%22%5c%00%0a", b"/" + bytes(range(0x21, 0x7f)),
           b"/high-" + bytes(range(0x80, 0x100)), b"/long-" + b"x" * 600, b"/cr-\rx"]
hosts = [b"h.test", b'h"q.test', b"h\\b.test", b"\xc3\xa9.test", b"h\x01.test", b"h\x7f.test",
         b"h\xff.test", b"[::1]:80", b"h.test:99999"]
reqs = [(t, b"h.test") for t in targets] + [(b"/h", h) for h in hosts]
for t, h in reqs:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET " + t + b" HTTP/1.1\r\nHost: " + h + b"\r\nConnection: close\r\n\r\n")
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.") else "0"
    print(status, t.hex(), h.hex())
PY
}

@test "accesslog: format json: every line of a hostile corpus parses as JSON with every field; targets and hosts decode to the bytes sent" {
	start_origin o
	start_spliced "global { access_log $BATS_TEST_TMPDIR/access.log format json; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	hostile_corpus "$SPLICED_PORT" >"$BATS_TEST_TMPDIR/sent"
	local n
	n=$(wc -l <"$BATS_TEST_TMPDIR/sent")
	wait_lines "$ACCESS_LOG" "$n" 5
	"$PYTHON" - "$ACCESS_LOG" "$BATS_TEST_TMPDIR/sent" <<'PY'
import json, sys
fields = ["time", "listener", "client", "method", "target", "version", "host", "status",
          "bytes_in", "bytes_out", "pool", "server", "duration_ms", "tries", "tls", "route",
          "request_id", "term", "refused"]
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"\n"), "last line unterminated"
lines = raw.split(b"\n")[:-1]
sent = [l.split() for l in open(sys.argv[2])]
assert len(lines) == len(sent), (len(lines), len(sent))
for line, (status, t, h) in zip(lines, sent):
    assert all(0x20 <= b < 0x7f for b in line), line  # printable ASCII: escapes only
    d = json.loads(line)  # bytes: decoded as UTF-8, strictly
    assert list(d)[:len(fields)] == fields, list(d)
    assert d["listener"] == "web" and d["client"] == "127.0.0.1", d
    assert str(d["status"]) == status, (d["status"], status, line)
    assert d["time"].endswith("Z") and len(d["time"]) == 24, d["time"]
    if d["target"] is not None:
        # every byte came back (the log keeps the first 255 of a target)
        want = bytes.fromhex(t)[:255]
        got = d["target"].encode("latin-1")
        assert got == want or status == "400", (got, want)
    if status == "200":
        assert d["target"].encode("latin-1") == bytes.fromhex(t)[:255], d
        host = bytes.fromhex(h).decode("latin-1").lower()
        host = host[:host.index("]") + 1] if host.startswith("[") else host.split(":")[0]
        assert d["host"] == host, d
        assert d["pool"] == "p" and d["server"] == "o" and d["term"] is None, d
    else:
        assert d["pool"] is None, d
print(len(lines), "lines parsed;", sum(1 for s in sent if s[0] == "200"), "answered 200")
PY
	cat "$ACCESS_LOG"
}

@test "accesslog: format text: the same corpus keeps every field one word and the request line quoted" {
	start_origin o
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	hostile_corpus "$SPLICED_PORT" >"$BATS_TEST_TMPDIR/sent"
	local n
	n=$(wc -l <"$BATS_TEST_TMPDIR/sent")
	wait_lines "$ACCESS_LOG" "$n" 5
	cat "$ACCESS_LOG"
	"$PYTHON" - "$ACCESS_LOG" <<'PY'
import re, sys
pat = re.compile(rb'^\S+Z web 127\.0\.0\.1 "[!-~]+ [!-~]+ HTTP/1\.[01]" host=[!-~]+ status=\d+ '
                 rb'bytes_in=\d+ bytes_out=\d+ backend=[!-~]+/[!-~]+ duration_ms=\d+( route=[!-~]+)?'
                 rb'( term=[a-z_]+)?$')
for line in open(sys.argv[1], "rb").read().split(b"\n")[:-1]:
    assert pat.match(line), line
    inner = line.split(b'"', 1)[1].rsplit(b'"', 1)[0]
    assert b'"' not in inner, line
PY
}
