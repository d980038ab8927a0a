#!/usr/bin/env bats
# ratelimit.bats - per-client limits shared by all workers: `limit rate` (429 with Retry-After,
# exact counts across two workers, keyed by source or by a header, per listener and per route)
# and `limit conn` (1,000 slow clients from one address hold at most 20 connections while
# other addresses are served).

load helpers

eval "$(declare -f setup | sed '1s/^setup/e2e_setup/')"
setup() {
	e2e_setup
	CTL_SOCK=$BATS_TEST_TMPDIR/ctl.sock
	start_origin a
}

stat() {
	"$E2E_ROOT/.output/splicectl" -s "$CTL_SOCK" show stats | awk -v n="$1" '$1 == n { print $2 }'
}

# codes N URL [curl args]: the statuses of N requests, each on its own connection, sorted
# and counted ("5 200" lines)
codes() {
	local n=$1 u=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"${CURL[@]}" -o /dev/null -w '%{http_code}\n' "$@" "$u" || true
	done | sort | uniq -c | awk '{ print $1, $2 }'
}

@test "limit rate: exact counts across two workers, 429 with Retry-After, by source and by header" {
	start_spliced "global { control $CTL_SOCK; workers 2; }
listener web {
	bind 127.0.0.1:@PORT@;
	limit rate 1/m burst 5;
	route api { path /api; limit rate 1/m burst 2 key header X-Key; pool pa; }
	route r { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	# 1 request a minute: no token comes back during the test
	assert_equal "5 200
7 429" "$(codes 12 "$(url /)")" "127.0.0.1: a burst of 5"
	assert_equal "5 200" "$(codes 5 "$(url /)" --interface 127.0.0.2)" "another source has its own"
	"${CURL[@]}" -o /dev/null -D "$BATS_TEST_TMPDIR/h" "$(url /)" || true
	head -1 "$BATS_TEST_TMPDIR/h" | grep -q ' 429 ' || fail "$(cat "$BATS_TEST_TMPDIR/h")"
	ra=$(tr -d '\r' <"$BATS_TEST_TMPDIR/h" | awk -F': ' 'tolower($1) == "retry-after" { print $2 }')
	assert_between 1 "${ra:-0}" 60 "Retry-After"
	# the route's limit by header, under the listener's by source (127.0.0.3 has 5)
	assert_equal "2 200
1 429" "$(codes 3 "$(url /api)" -H 'X-Key: k1' --interface 127.0.0.3)" "X-Key k1"
	assert_equal "2 200" "$(codes 2 "$(url /api)" -H 'X-Key: k2' --interface 127.0.0.3)" "X-Key k2"
	assert_equal 9 "$(stat errors.limit_rate_429)" "429 counted"
	wait_lines "$ACCESS_LOG" 23
	assert_equal 9 "$(grep -c 'status=429 .*refused=limit_rate' "$ACCESS_LOG")" "429 logged"
}

@test "limit conn 20: 1,000 slow clients from one address, other addresses unaffected" {
	start_spliced "global { control $CTL_SOCK; workers 2; timeout header 60s; }
listener web {
	bind 127.0.0.1:@PORT@;
	limit conn 20;
	route r { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	# 1,000 connections from 127.0.0.2, each sends half a head and waits
	"$PYTHON" - "$SPLICED_PORT" "$BATS_TEST_TMPDIR/slow.ready" <<'PY' &
import socket, sys, time
port, ready = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(1000):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    socks.append(s)
open(ready, "w").close()
time.sleep(40)
PY
	record_pid $! slowclients
	wait_until 30 test -e "$BATS_TEST_TMPDIR/slow.ready" || fail "slow clients did not connect"
	wait_until 20 test "$(stat errors.limit_conn)" = 980 ||
		fail "limit_conn refusals: $(stat errors.limit_conn)"
	for i in 1 2 3 4 5; do
		assert_equal 200 "$(http_code "$(url /size/100)")" "127.0.0.1 request $i"
	done
	assert_equal 200 "$(http_code "$(url /size/100)" --interface 127.0.0.3)" "127.0.0.3"
	assert_equal 503 "$("${CURL[@]}" -o /dev/null -w '%{http_code}' --max-time 5 \
		--interface 127.0.0.2 "$(url /)" || true)" "one more from 127.0.0.2: 503 and close"
	assert_equal 981 "$(stat errors.limit_conn)" "refusals counted"
	assert_equal 981 "$(grep -c ' 127.0.0.2 .*refused=limit_conn' "$ACCESS_LOG")" "refusals logged"
}
