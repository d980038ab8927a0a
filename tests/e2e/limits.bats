#!/usr/bin/env bats
# limits.bats - max_connections, max_header_size, running out of descriptors, slow clients and
# the memory they hold.

load helpers

@test "limits: max_connections 2 -> a third client waits in the listen queue and is served once a slot is free, no 503" {
	start_origin o
	start_spliced "global { max_connections 2; timeout header 10s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# the two slots hold exchanges (never closed to make room); the third client's request
	# waits for one of them to end
	run timeout 30 "$PYTHON" - "$SPLICED_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def status(s):
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError as e:
        return "error %s" % e
    return data.split(b"\r\n")[0].decode() if data else "closed"
held = []
for i in range(2):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    held.append(s)
time.sleep(0.3)
third = socket.create_connection(("127.0.0.1", port), timeout=20)
third.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
print("third:", status(third))
print("held1:", status(held[0]))
print("held2:", status(held[1]))
PY
	echo "$output"
	[ "$status" -eq 0 ]
	assert_equal "third: HTTP/1.1 200 OK" "${lines[0]}"
	assert_equal "held1: HTTP/1.1 200 OK" "${lines[1]}"
	assert_equal "held2: HTTP/1.1 200 OK" "${lines[2]}"
	grep -q 'max_connections (2) reached' "$SPLICED_ERR" || fail "the episode is not logged"
	assert_equal 2 "$(grep -c '^GET /slow' "$(origin_log o)")" "slow requests at the origin"
	grep -q '^GET /third' "$(origin_log o)" || fail "the waiting client never reached the origin"
}

@test "limits: at max_connections, idle keep-alive connections, then the oldest incomplete heads, are closed to admit waiting clients" {
	start_origin o
	start_spliced "global { workers 1; max_connections 2; timeout header 20s; timeout idle 20s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	run timeout 40 "$PYTHON" - "$SPLICED_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=10)
def response(s):
    """one response (Content-Length framed), or how the connection ended"""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                return "closed"
            data += d
        head, _, body = data.partition(b"\r\n\r\n")
        n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(body) < n:
            body += s.recv(65536)
    except OSError as e:
        return "reset" if "reset" in str(e).lower() else "error %s" % e
    return head.split(b"\r\n")[0].decode()
def is_open(s):
    s.setblocking(False)
    try:
        d = s.recv(1)
        return "open" if d else "closed"
    except BlockingIOError:
        return "open"
    except OSError:
        return "closed"
    finally:
        s.setblocking(True)
half = b"GET /a HTTP/1.1\r\nHost: x\r\n"
a = connect(); a.sendall(half)                        # oldest: an incomplete head
time.sleep(0.2)
b = connect(); b.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
print("b:", response(b))                              # then idle keep-alive
c = connect(); c.sendall(b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
print("c:", response(c))                              # admitted: b made room
time.sleep(0.2)
print("b after c:", is_open(b), "a after c:", is_open(a))
e = connect(); e.sendall(half)                        # a newer incomplete head
time.sleep(0.2)
d = connect(); d.sendall(b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
print("d:", response(d))                              # admitted: a (the oldest head) made room
time.sleep(0.2)
print("a after d:", is_open(a), "e after d:", is_open(e))
e.sendall(b"\r\n")
print("e:", response(e))
PY
	echo "$output"
	[ "$status" -eq 0 ]
	assert_equal "b: HTTP/1.1 200 OK" "${lines[0]}"
	assert_equal "c: HTTP/1.1 200 OK" "${lines[1]}"
	assert_equal "b after c: closed a after c: open" "${lines[2]}"
	assert_equal "d: HTTP/1.1 200 OK" "${lines[3]}"
	assert_equal "a after d: closed e after d: open" "${lines[4]}"
	assert_equal "e: HTTP/1.1 200 OK" "${lines[5]}"
}

@test "limits: max_connections counts connections, not requests" {
	start_origin o
	start_spliced "global { max_connections 2; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# many requests one after the other, each on its own connection, all served
	run "${CURL[@]}" -H 'Connection: close' -w '%{http_code}\n' -o /dev/null "$(url '/r[1-30]')"
	[ "$(grep -c '^200$' <<<"$output")" -eq 30 ] || fail "sequential connections refused: $output"
}

@test "limits: max_header_size 2k -> a 3k head gets 431, a 1.5k head passes" {
	start_origin o
	start_spliced "global { max_header_size 2k; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	local big small
	big=$(printf '%03000d' 0)
	small=$(printf '%01400d' 0)
	run "${CURL[@]}" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -H "X-Big: $big" "$(url /)"
	echo "big: $output $(cat "$BATS_TEST_TMPDIR/body")"
	assert_equal 431 "$output"
	assert_equal "431 Request Header Fields Too Large" "$(cat "$BATS_TEST_TMPDIR/body")"
	run "${CURL[@]}" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -H "X-Small: $small" "$(url /echo)"
	echo "small: $output"
	assert_equal 200 "$output"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/body")" "X-Small: $small"
	sleep 0.1
	[ "$(grep -c . "$(origin_log o)")" -eq 1 ] || fail "the origin must see only the small request"
}

@test "limits: the 431 limit covers the head as a whole, not one header" {
	start_origin o
	start_spliced "global { max_header_size 2k; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	local args=() i
	for i in $(seq 1 12); do args+=(-H "X-H$i: $(printf '%0200d' 0)"); done
	run "${CURL[@]}" -o /dev/null -w '%{http_code}' "${args[@]}" "$(url /)"
	assert_equal 431 "$output"
}

@test "limits: a head growing past max_header_size byte by byte -> 431 at once" {
	start_origin o
	start_spliced "global { max_header_size 1k; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# never ends the head: spliced must answer once the limit is passed, not wait for more
	printf 'GET / HTTP/1.1\r\nHost: x\r\nX-Pad: %01200d' 0 >"$BATS_TEST_TMPDIR/req"
	raw_send "$BATS_TEST_TMPDIR/req" --byte-by-byte 0 --timeout 5 --expect-close
	echo "rc=$RAW_RC $(head -n 1 "$RAW_OUT")"
	assert_equal "HTTP/1.1 431 Request Header Fields Too Large" "$(head -n 1 "$RAW_OUT" | tr -d '\r')"
	[ "$RAW_RC" -eq 0 ]
}

@test "limits: out of descriptors, queued connections are answered once descriptors are free, with no new connection" {
	start_origin o
	start_spliced "global { workers 1; timeout header 60s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	# a descriptor limit a little above what the daemon holds now: a few dozen idle clients
	# take the rest, the others wait in the listen queue
	local used
	used=$(ls /proc/"$SPLICED_PID"/fd | wc -l)
	prlimit --pid "$SPLICED_PID" --nofile=$((used + 40)):$((used + 40))
	run timeout 60 "$PYTHON" - "$SPLICED_PORT" "$SPLICED_ERR" <<'PY'
import socket, sys, threading, time
port, errlog = int(sys.argv[1]), sys.argv[2]
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(300)]
deadline = time.time() + 20
while "Too many open files" not in open(errlog, errors="replace").read():
    if time.time() > deadline:
        print("no EMFILE in the log")
        sys.exit(1)
    time.sleep(0.05)
# these queue behind the held ones with their request sent; then the held ones go away and
# no connection arrives any more
waiting = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(5)]
for i, s in enumerate(waiting):
    s.sendall(b"GET /w%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
time.sleep(0.3)
for s in held:
    s.close()
deadline = time.time() + 10
for s in waiting:
    data = b""
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError as e:
        data += b"(%s)" % str(e).encode()
    print(data.split(b"\r\n")[0].decode(errors="replace") if data else "closed")
PY
	echo "$output"
	[ "$status" -eq 0 ]
	for i in 0 1 2 3 4; do
		assert_equal "HTTP/1.1 200 OK" "${lines[$i]}" "waiting connection $i"
	done
	# one warning for the episode, however many connections arrived during it
	assert_equal 1 "$(grep -c 'accept.*Too many open files' "$SPLICED_ERR")" "EMFILE log lines"
	grep -q 'accepting again' "$SPLICED_ERR" || fail "no end of the episode in the log"
}

# trickle N SECONDS: N connections from one address, each sending a request head a byte at a
# time (never finished within SECONDS); prints "holding N" once all are open, then at the end
# "closed K": how many the daemon closed meanwhile
trickle() {
	"$PYTHON" - "$SPLICED_PORT" "$1" "$2" <<'PY'
import resource, socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
head = b"GET /slow-head HTTP/1.1\r\nHost: x\r\nUser-Agent: trickle\r\nX-Pad: " + b"a" * 4000
socks, pos, closed = [], [], set()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    s.send(head[:20])
    socks.append(s)
    pos.append(20)
print("holding", len(socks), flush=True)
end = time.time() + secs
while time.time() < end:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            s.send(head[pos[i]:pos[i] + 1])
            pos[i] += 1
        except OSError:
            closed.add(i)
    time.sleep(0.5)
print("closed", len(closed), flush=True)
PY
}

# rss_kib PID
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# serve_many N: N requests, each on a new connection; prints the status codes
serve_many() {
	local i
	for ((i = 0; i < $1; i++)); do
		"${CURL[@]}" --max-time 20 -o /dev/null -w '%{http_code}\n' -H 'Connection: close' \
			"$(url "/legit/$i")" || echo "curl-failed"
	done
}

@test "limits: 1,000 connections trickling a head keep no other client out; memory per held connection" {
	start_origin o
	start_spliced "global { timeout header 60s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	local out=$BATS_TEST_TMPDIR/trickle.out pid base held per
	serve_many 5 >/dev/null
	base=$(rss_kib "$SPLICED_PID")
	trickle 1000 8 >"$out" 2>&1 &
	pid=$!
	record_pid "$pid" trickle
	wait_until 20 grep -q holding "$out" || fail "trickler: $(cat "$out")"
	sleep 1
	held=$(rss_kib "$SPLICED_PID")
	run serve_many 50
	[ "$(grep -c '^200$' <<<"$output")" -eq 50 ] || fail "requests during the slowloris: $output"
	wait "$pid" || fail "trickler: $(cat "$out")"
	per=$(((held - base) / 1000))
	echo "# RSS ${base} KiB -> ${held} KiB with 1000 slow heads held: ${per} KiB each" >&3
	assert_equal "closed 0" "$(tail -n 1 "$out")" "slow heads closed below max_connections"
	# buffers come when bytes do: a slow head holds the connection and a head buffer, not
	# the buffers of an exchange (more than 100 KiB before)
	((per < 16)) || fail "${per} KiB per held connection"
}

@test "limits: a slowloris beyond max_connections: the oldest slow heads are closed, other clients are served" {
	start_origin o
	start_spliced "global { workers 1; max_connections 200; timeout header 60s; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	local out=$BATS_TEST_TMPDIR/trickle.out pid closed
	trickle 1000 6 >"$out" 2>&1 &
	pid=$!
	record_pid "$pid" trickle
	wait_until 20 grep -q holding "$out" || fail "trickler: $(cat "$out")"
	run serve_many 50
	[ "$(grep -c '^200$' <<<"$output")" -eq 50 ] || fail "requests during the slowloris: $output"
	wait "$pid" || fail "trickler: $(cat "$out")"
	closed=$(sed -n 's/^closed //p' "$out")
	echo "# slow heads closed to admit others: $closed of 1000" >&3
	((closed >= 800)) || fail "only $closed slow heads closed with 200 slots"
	grep -q 'max_connections (200) reached' "$SPLICED_ERR" || fail "the episode is not logged"
	! grep -q ' 503 ' "$ACCESS_LOG" || fail "a 503 was answered"
}
