#!/usr/bin/env bats
# balance.bats - how requests spread over a pool's servers: weighted round robin (exact), least
# connections, random, hash by source address or by header, backup servers.

load helpers

# count_backends N [curl args]: N requests, each on a new connection (Connection: close);
# prints "count name" lines sorted by name
count_backends() {
	local n=$1
	shift
	"${CURL[@]}" -H 'Connection: close' "$@" "$(url "/r[1-$n]")" | sort | uniq -c |
		awk '{ print $1, $2 }'
}

_no_upstream_conns() { # ORIGIN_PORT: no established connection to it
	[[ -z $(ss -Htn state established "( dport = :$1 )" 2>/dev/null) ]]
}

# count_of NAME COUNTS
count_of() {
	awk -v n="$1" '$2 == n { print $1; f = 1 } END { if (!f) print 0 }' <<<"$2"
}

@test "balance: weighted round robin 3:1 is exact over 400 new connections" {
	start_origin a
	start_origin b
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance round_robin; server a 127.0.0.1:${ORIGIN_PORTS[a]} weight 3;
	server b 127.0.0.1:${ORIGIN_PORTS[b]} weight 1; }"
	run count_backends 400
	echo "$output"
	assert_equal $'300 a\n100 b' "$output" "request counts"
	# each request came on its own connection to the origin
	wait_lines "$ACCESS_LOG" 400
	[ "$(file_lines "$ACCESS_LOG")" -eq 400 ]
}

@test "balance: round robin is the default and alternates evenly" {
	start_origin a
	start_origin b
	start_origin c
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server a 127.0.0.1:${ORIGIN_PORTS[a]}; server b 127.0.0.1:${ORIGIN_PORTS[b]};
	server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	run count_backends 90
	echo "$output"
	assert_equal $'30 a\n30 b\n30 c' "$output"
}

@test "balance: every keep-alive request is balanced, not only each connection" {
	start_origin a
	start_origin b
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server a 127.0.0.1:${ORIGIN_PORTS[a]}; server b 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	run "${CURL[@]}" -w '%{num_connects}\n' "$(url '/k[1-8]')"
	echo "$output"
	# one client connection (num_connects 1 then 0), answers alternate
	assert_equal "1 0 0 0 0 0 0 0" "$(grep -E '^[0-9]+$' <<<"$output" | tr '\n' ' ' | sed 's/ $//')"
	assert_equal "a b a b a b a b" "$(grep -vE '^[0-9]+$' <<<"$output" | tr '\n' ' ' | sed 's/ $//')"
}

@test "balance: least_conn spreads idle load and avoids a busy server" {
	start_origin a
	start_origin b
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance least_conn; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	# sequential requests: nobody is busy, both servers get a fair share
	run count_backends 200
	echo "$output"
	assert_between 70 "$(count_of a "$output")" 130 "requests to a"
	assert_between 70 "$(count_of b "$output")" 130 "requests to b"

	# one request held open on one server: everything else goes to the other
	"${CURL[@]}" --max-time 30 -D "$BATS_TEST_TMPDIR/hold.h" -o /dev/null "$(url /hold)" \
		2>/dev/null 3>&- &
	record_pid $! curl-hold
	wait_until 5 grep -qi '^x-backend:' "$BATS_TEST_TMPDIR/hold.h" || fail "no /hold response head"
	local busy idle
	busy=$(tr -d '\r' <"$BATS_TEST_TMPDIR/hold.h" | awk -F': ' 'tolower($1) == "x-backend" { print $2 }')
	if [[ $busy == a ]]; then idle=b; else idle=a; fi
	# one request at a time, each after the previous one's upstream connection is gone (see the
	# next test: a closing client connection keeps its upstream a little while)
	local i got=""
	for i in $(seq 1 20); do
		wait_until 5 _no_upstream_conns "${ORIGIN_PORTS[$idle]}" || fail "upstream to $idle stays open"
		got+="$(backend_of "$(url "/q$i")" -H 'Connection: close') "
	done
	echo "busy=$busy: $got"
	assert_equal "$(printf "$idle %.0s" $(seq 1 20))" "$got" "requests while $busy is busy"
}

@test "balance: a finished request does not keep its upstream connection (least_conn load)" {
	start_origin a
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance least_conn; server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	# a client that reads the whole Connection: close response but is slow to close its socket
	run timeout 20 "$PYTHON" - "$SPLICED_PORT" "${ORIGIN_PORTS[a]}" <<'PY'
import socket, subprocess, sys, time
port, oport = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    data += c
print("response:", data.split(b"\r\n")[0].decode())
time.sleep(0.5)
out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{oport} )"],
                     capture_output=True, text=True).stdout
n = len(out.strip().splitlines())
print("upstream connections 0.5 s after the response was complete:", n)
s.close()
sys.exit(1 if n else 0)
PY
	echo "$output"
	assert_contains "$output" "HTTP/1.1 200 OK"
	[ "$status" -eq 0 ] || fail "the upstream connection of a finished request is still open (counts as load for least_conn)"
}

@test "balance: random spreads within tolerance" {
	start_origin a
	start_origin b
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance random; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	run count_backends 400
	echo "$output"
	# binomial(400, 0.5): sd = 10, so 140..260 is a +-6 sd band
	assert_between 140 "$(count_of a "$output")" 260 "requests to a"
	assert_between 140 "$(count_of b "$output")" 260 "requests to b"
}

@test "balance: random honours weights" {
	start_origin a
	start_origin b
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance random; server a 127.0.0.1:${ORIGIN_PORTS[a]} weight 3;
	server b 127.0.0.1:${ORIGIN_PORTS[b]} weight 1; }"
	run count_backends 400
	echo "$output"
	# expected 300/100, sd ~ 8.7
	assert_between 250 "$(count_of a "$output")" 350 "requests to a"
}

@test "balance: hash source sends one client to one server, clients spread" {
	start_origin a
	start_origin b
	start_origin c
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance hash source; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	run count_backends 60
	echo "$output"
	[ "$(wc -l <<<"$output")" -eq 1 ] || fail "one client address must stick to one server"
	assert_contains "$output" "60 "

	# other loopback source addresses: each sticks, and together they use several servers
	local i seen="" first
	for i in $(seq 2 31); do
		run count_backends 3 --interface "127.0.0.$i"
		[ "$(wc -l <<<"$output")" -eq 1 ] || fail "client 127.0.0.$i was spread: $output"
		first=$(awk '{ print $2 }' <<<"$output")
		seen+="$first"$'\n'
	done
	echo "servers per client: $(sort <<<"$seen" | uniq -c | tr '\n' ' ')"
	[ "$(sort -u <<<"$seen" | grep -c .)" -ge 2 ] || fail "30 clients all on one server"
	# the access log knows the clients
	grep -q ' 127.0.0.7 "GET' "$ACCESS_LOG" || fail "access log lacks client 127.0.0.7"
}

@test "balance: hash header X-User: same value same server, values spread" {
	start_origin a
	start_origin b
	start_origin c
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance hash header X-User; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	local u out
	for u in alice bob carol; do
		out=$(count_backends 15 -H "X-User: $u")
		echo "$u: $out"
		[ "$(wc -l <<<"$out")" -eq 1 ] || fail "user $u spread over servers: $out"
	done
	# 30 users, each on its own connection: all three servers are used, and a second pass
	# gives every user the same server again
	local args=() pass1 pass2
	for u in $(seq 1 30); do
		args+=(-H 'Connection: close' -H "X-User: user-$u" "$(url "/u$u")" --next)
	done
	unset 'args[-1]'
	pass1=$("${CURL[@]}" "${args[@]}" | tr '\n' ' ')
	pass2=$("${CURL[@]}" "${args[@]}" | tr '\n' ' ')
	echo "pass1: $pass1"
	[ "$(tr ' ' '\n' <<<"$pass1" | grep . | sort -u | wc -l)" -eq 3 ] ||
		fail "30 users must reach all 3 servers"
	assert_equal "$pass1" "$pass2" "second pass"
}

@test "balance: hash header decides per request, also on one keep-alive connection" {
	start_origin a
	start_origin b
	start_origin c
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { balance hash header X-User; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	local u close=() keep=() want got conns
	for u in $(seq 1 12); do
		close+=(-H 'Connection: close' -H "X-User: user-$u" "$(url "/u$u")" --next)
		keep+=(-w '%{num_connects}\n' -H "X-User: user-$u" "$(url "/u$u")" --next)
	done
	unset 'close[-1]' 'keep[-1]'
	want=$("${CURL[@]}" "${close[@]}" | tr '\n' ' ')
	"${CURL[@]}" "${keep[@]}" >"$BATS_TEST_TMPDIR/keep.out"
	got=$(awk 'NR % 2 == 1' "$BATS_TEST_TMPDIR/keep.out" | tr '\n' ' ')
	conns=$(awk 'NR % 2 == 0' "$BATS_TEST_TMPDIR/keep.out" | tr -d '\n')
	echo "separate connections: $want"
	echo "one connection:       $got (connects: $conns)"
	assert_equal 100000000000 "$conns" "curl connects (one keep-alive connection)"
	assert_equal "$want" "$got" "servers per user on a keep-alive connection"
}

@test "balance: backup is used only when every primary is down" {
	start_origin a
	start_origin b
	start_origin bk
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server a 127.0.0.1:${ORIGIN_PORTS[a]}; server b 127.0.0.1:${ORIGIN_PORTS[b]};
	server bk 127.0.0.1:${ORIGIN_PORTS[bk]} backup; }"
	run count_backends 40
	echo "$output"
	assert_equal $'20 a\n20 b' "$output" "both primaries up"
	stop_origin a
	run count_backends 20
	echo "$output"
	assert_equal "20 b" "$output" "one primary up"
	stop_origin b
	run count_backends 20
	echo "$output"
	assert_equal "20 bk" "$output" "no primary up"
	[ "$(file_lines "$(origin_log bk)")" -eq 20 ]
}

# ---- session affinity, per-server caps and the queue ----

# control LINE: one command on the control socket $CTL_SOCK, the answer on stdout
control() {
	"$PYTHON" - "$CTL_SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode("latin1"))
PY
}

@test "balance: sticky cookie keeps a client on its server for 100 requests and moves it when drained" {
	start_origin a
	start_origin b
	start_origin c
	CTL_SOCK=$BATS_TEST_TMPDIR/control.sock
	start_spliced "global { control $CTL_SOCK; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { sticky cookie SRV ttl 1h; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	local jar=$BATS_TEST_TMPDIR/jar first cookie hdrs=$BATS_TEST_TMPDIR/hdrs
	"${CURL[@]}" -c "$jar" -b "$jar" -D "$hdrs" -o "$BATS_TEST_TMPDIR/first" "$(url /first)"
	first=$(cat "$BATS_TEST_TMPDIR/first")
	cat "$hdrs"
	grep -qi '^Set-Cookie: SRV=[0-9a-f]\{16\}; Path=/; HttpOnly; Max-Age=3600' "$hdrs" ||
		fail "no sticky cookie"
	cookie=$(awk '$6 == "SRV" { print $7 }' "$jar")
	# an opaque value: neither the address nor the port of a server
	[[ $cookie != *127.0.0.1* && $cookie != *"${ORIGIN_PORTS[$first]}"* ]]
	# 100 requests on new connections with the cookie: all on the same server, no new cookie
	run "${CURL[@]}" -b "$jar" -D "$hdrs" -H 'Connection: close' "$(url '/s[1-100]')"
	assert_equal 100 "$(grep -c "^$first\$" <<<"$output")" "requests on $first"
	if grep -qi '^Set-Cookie' "$hdrs"; then fail "cookie set again"; fi
	# without a cookie, round robin spreads them
	run "${CURL[@]}" -H 'Connection: close' "$(url '/n[1-6]')"
	[ "$(sort -u <<<"$output" | wc -l)" -eq 3 ]
	# drained: the client moves, gets a new cookie, and sticks to its new server
	control "server set p $first drain"
	"${CURL[@]}" -c "$jar" -b "$jar" -D "$hdrs" -o "$BATS_TEST_TMPDIR/moved" "$(url /moved)"
	local moved
	moved=$(cat "$BATS_TEST_TMPDIR/moved")
	echo "first=$first moved=$moved"
	[[ $moved != "$first" ]]
	grep -qi '^Set-Cookie: SRV=' "$hdrs" || fail "no new cookie after the move"
	run "${CURL[@]}" -b "$jar" -H 'Connection: close' "$(url '/m[1-30]')"
	assert_equal 30 "$(grep -c "^$moved\$" <<<"$output")" "requests on $moved after the move"
}

@test "balance: hash cookie, hash query and hash uri keep one key on one server" {
	start_origin a
	start_origin b
	start_origin c
	start_spliced "listener web { bind 127.0.0.1:@PORT@;
	route { path /c/; pool pc; } route { path /q/; pool pq; } route { pool pu; } }
pool pc { balance hash cookie sid; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; server c 127.0.0.1:${ORIGIN_PORTS[c]}; }
pool pq { balance hash query user; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; server c 127.0.0.1:${ORIGIN_PORTS[c]}; }
pool pu { balance hash uri; server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]}; server c 127.0.0.1:${ORIGIN_PORTS[c]}; }"
	local k seen=() out
	for k in $(seq 1 12); do
		out=$("${CURL[@]}" -b "x=1; sid=user$k; y=2" "$(url "/c/[1-5]")" | sort -u)
		[ "$(wc -l <<<"$out")" -eq 1 ] || fail "cookie sid=user$k went to: $out"
		seen+=("$out")
		out=$("${CURL[@]}" "$(url "/q/x?a=1&user=u$k&r=[1-5]")" | sort -u)
		[ "$(wc -l <<<"$out")" -eq 1 ] || fail "query user=u$k went to: $out"
		out=$(for i in 1 2 3 4 5; do "${CURL[@]}" "$(url "/page$k")"; done | sort -u)
		[ "$(wc -l <<<"$out")" -eq 1 ] || fail "uri /page$k went to: $out"
	done
	[ "$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)" -ge 2 ] || fail "every sid on one server"
}

@test "balance: max_conn with a queue under wrk: never over the cap, every request served or 503" {
	command -v wrk >/dev/null || skip "wrk not installed"
	start_origin a -I
	start_origin b -I
	start_spliced "global { metrics 127.0.0.1:@PORT2@; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { queue 8 timeout 1s; server a 127.0.0.1:${ORIGIN_PORTS[a]} max_conn 2;
	server b 127.0.0.1:${ORIGIN_PORTS[b]} max_conn 3; }"
	local w=$BATS_TEST_TMPDIR/wrk.out m=$BATS_TEST_TMPDIR/metrics
	timeout 30 wrk -t1 -c40 -d4s "$(url '/slow?ms=40')" >"$w" 2>&1 || true
	cat "$w"
	# every request still waiting gets its answer within the queue timeout
	sleep 1.5
	"${CURL[@]}" -o "$m" "http://127.0.0.1:$SPLICED_PORT2/metrics"
	grep '^spliced_pool_queue\|^spliced_pool_queued' "$m"
	local lines ok busy served maxa maxb full tmo queued
	lines=$(file_lines "$ACCESS_LOG")
	ok=$(grep -c ' status=200 ' "$ACCESS_LOG" || true)
	busy=$(grep -c ' status=503 ' "$ACCESS_LOG" || true)
	served=$(($(file_lines "$(origin_log a)") + $(file_lines "$(origin_log b)")))
	maxa=$(grep -o 'inflight=[0-9]*' "$(origin_log a)" | cut -d= -f2 | sort -n | tail -1)
	maxb=$(grep -o 'inflight=[0-9]*' "$(origin_log b)" | cut -d= -f2 | sort -n | tail -1)
	full=$(awk -F' ' '/^spliced_pool_queue_rejected_total\{pool="p",reason="full"\}/ { print $2 }' "$m")
	tmo=$(awk -F' ' '/^spliced_pool_queue_rejected_total\{pool="p",reason="timeout"\}/ { print $2 }' "$m")
	queued=$(awk -F' ' '/^spliced_pool_queued_total\{pool="p"\}/ { print $2 }' "$m")
	echo "# access log $lines lines: $ok served, $busy 503; origins saw $served (max in flight a=$maxa b=$maxb); queued $queued, rejected full=$full timeout=$tmo" >&3
	[ "$lines" -gt 100 ]
	assert_equal "$lines" "$((ok + busy))" "every request served or 503"
	assert_equal "$ok" "$served" "requests served = requests the servers saw"
	assert_equal "$busy" "$((full + tmo))" "503s = queue rejections"
	[ "$queued" -gt 0 ]
	[ "$busy" -gt 0 ]
	assert_between 1 "$maxa" 2 "requests in flight at a"
	assert_between 1 "$maxb" 3 "requests in flight at b"
	grep -q '^spliced_pool_queue_length{pool="p"} 0$' "$m"
}
