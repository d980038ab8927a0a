#!/usr/bin/env bats
# lifecycle.bats - stopping: SIGTERM drains (no new connections, in-flight requests finish,
# idle keep-alive connections close, the last response says Connection: close, tunnels get
# drain_timeout), SIGINT stops at once.

load helpers

one_pool() {
	echo "global { drain_timeout ${1:-30s}; }
listener web {
	bind 127.0.0.1:@PORT@;
	route { pool a; }
}
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }"
}

@test "lifecycle: SIGTERM lets an in-flight download finish, refuses new connections, then exits" {
	start_origin a
	start_spliced "$(one_pool)"
	local out=$BATS_TEST_TMPDIR/dl
	"${CURL[@]}" --limit-rate 40M -o "$out" "$(url /size/134217728)" &
	local cpid=$!
	record_pid "$cpid" curl
	wait_until 10 test -s "$out"
	kill -TERM "$SPLICED_PID"
	wait_until 5 grep -q "SIGTERM: stopping" "$SPLICED_ERR"
	# no new connections
	run "${CURL[@]}" "$(url /new)"
	[ "$status" -eq 7 ]
	kill -0 "$SPLICED_PID"
	wait "$cpid"
	[ "$(stat -c %s "$out")" -eq 134217728 ]
	[ "$(sha_of_file "$out")" = "$("${CURL[@]}" "$(origin_url a /size/134217728)" | sha_of_stream)" ]
	wait_until 5 _proc_gone "$SPLICED_PID"
	grep -q 'drained: every connection finished' "$SPLICED_ERR"
}

@test "lifecycle: SIGTERM closes idle keep-alive connections at once; a busy one gets Connection: close" {
	start_origin a
	start_spliced "$(one_pool)"
	local out=$BATS_TEST_TMPDIR/ka.out fifo=$BATS_TEST_TMPDIR/go
	mkfifo "$fifo"
	# connection 1 stays idle; connection 2 asks for a slow answer that spans the SIGTERM
	"$PYTHON" - "$SPLICED_PORT" "$fifo" >"$out" 2>&1 <<'PY' &
import http.client, socket, sys, time
port, fifo = int(sys.argv[1]), sys.argv[2]
idle = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
idle.request("GET", "/first")
r = idle.getresponse(); r.read()
busy = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
busy.request("GET", "/slow?ms=1500")
print("ready", flush=True)
open(fifo).read()
r = busy.getresponse()
print("busy", r.status, r.getheader("Connection"), len(r.read()), flush=True)
# the idle connection was closed by the daemon: reading gives EOF
idle.sock.settimeout(5)
print("idle", "eof" if idle.sock.recv(1) == b"" else "data", flush=True)
PY
	local py=$!
	record_pid "$py" client
	wait_until 10 grep -q ready "$out"
	kill -TERM "$SPLICED_PID"
	echo go >"$fifo"
	wait "$py"
	cat "$out"
	grep -q '^busy 200 close ' "$out"
	grep -q '^idle eof' "$out"
	wait_until 5 _proc_gone "$SPLICED_PID"
	grep -q 'drained: every connection finished' "$SPLICED_ERR"
}

@test "lifecycle: SIGTERM with an open tunnel waits drain_timeout, then closes it" {
	start_origin a
	start_spliced "$(one_pool 1s)"
	local out=$BATS_TEST_TMPDIR/ws.out
	"$PYTHON" - "$SPLICED_PORT" >"$out" 2>&1 <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(4096)
print(head.split(b"\r\n")[0].decode(), flush=True)
try:
    while s.recv(65536):
        pass
    print("closed", flush=True)
except Exception as e:
    print("error", e, flush=True)
PY
	local py=$!
	record_pid "$py" client
	wait_until 10 grep -q '101' "$out"
	kill -TERM "$SPLICED_PID"
	wait_until 10 _proc_gone "$SPLICED_PID"
	wait "$py"
	cat "$out"
	grep -q '^closed' "$out"
	grep -q 'drain timeout: closing 1 connection' "$SPLICED_ERR"
}

@test "lifecycle: SIGINT stops at once, even with a download in flight" {
	start_origin a
	start_spliced "$(one_pool)"
	local out=$BATS_TEST_TMPDIR/dl
	"${CURL[@]}" --limit-rate 20M -o "$out" "$(url /size/1073741824)" &
	local cpid=$! rc=0
	record_pid "$cpid" curl
	wait_until 10 test -s "$out"
	kill -INT "$SPLICED_PID"
	wait_until 3 _proc_gone "$SPLICED_PID"
	wait "$cpid" || rc=$?
	[ "$rc" -ne 0 ]
	[ "$(stat -c %s "$out")" -lt 1073741824 ]
}
