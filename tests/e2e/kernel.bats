#!/usr/bin/env bats
# kernel.bats - the BPF kernel data path (sockhash verdict, bpf/splice.bpf.c) under tunnels:
# byte-exact echo with the kernel redirecting both ways, the counters in the pinned maps, the
# in-flight cap under a slow reader, parallel tunnels, half-close both ways, client RST, no
# leaked map entries or fds after many short tunnels, bytes pipelined before the 101, CONNECT,
# upgrades after keep-alive requests, the origin dying mid-tunnel, tunnel timeouts (active,
# idle, accounting) and the daemon's CPU with idle kernel tunnels.
#
# Every byte moved is a counter pattern (tests/kern/pattern.py: word k = seed << 40 | k), so a
# lost, duplicated, reordered or foreign byte is reported at its offset, besides the SHA-256.
# Measurements (redirect ratios, queue and memory maxima) are printed as TAP comments.
#
# Needs root (BPF, bpffs): skips otherwise, and skips when the daemon does not log
# "kernel data path on" (no sockmap). Clients and helper origins are in tests/kern/.

load helpers

KERN_DIR="$E2E_ROOT/tests/kern"
TCLIENT="$KERN_DIR/tunnel_client.py"
MAPS="$KERN_DIR/maps.py"
MEMWATCH="$KERN_DIR/memwatch.py"
WS_ORIGIN="$KERN_DIR/ws_origin.py"
MIB=$((1 << 20))

# helpers.bash's teardown removes two of the four pinned maps; remove the other two as well
# (they stay behind when the daemon had to be killed)
eval "$(declare -f teardown | sed '1s/^teardown/e2e_teardown/')"
teardown() {
	e2e_teardown
	local pin
	if [[ -f $BATS_TEST_TMPDIR/.pins ]]; then
		while read -r pin; do
			[[ $pin == /sys/fs/bpf/spliced-t* && -d $pin ]] || continue
			rm -f "$pin/spliced_conns" "$pin/spliced_socks" "$pin/spliced_kern" \
				"$pin/spliced_servers"
			rmdir "$pin" 2>/dev/null || true
		done <"$BATS_TEST_TMPDIR/.pins"
	fi
}

# ---- prerequisites ----

need_root() {
	[[ $EUID -eq 0 ]] || skip "needs root: BPF maps, bpffs and the sockhash verdict"
	command -v bpftool >/dev/null || skip "bpftool not installed"
	command -v ss >/dev/null || skip "ss (iproute2) not installed"
}

# the daemon logs "kernel data path on" once the verdict is attached to the sockhash
require_kernel() {
	if ! grep -q 'kernel data path on' "$SPLICED_ERR"; then
		skip "kernel data path unavailable (bpffs/sockmap): $(grep -m1 'bpf:' "$SPLICED_ERR" ||
			echo 'no bpf line in the daemon log')"
	fi
}

# maps pinned (also with --no-splice)
require_maps() {
	if ! grep -q 'maps pinned under' "$SPLICED_ERR"; then
		skip "BPF maps not pinned (no bpffs?): $(grep -m1 'bpf:' "$SPLICED_ERR" ||
			echo 'no bpf line in the daemon log')"
	fi
}

# ---- setup ----

# kern_setup [GLOBAL_SETTINGS]: C origin "ws" (101 + raw echo) behind spliced
kern_setup() {
	start_origin ws
	start_spliced "global { max_connections 1024; ${1:-} }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server ws 127.0.0.1:$ORIGIN_PORT; }"
}

# start_pyorigin NAME [ws_origin.py args]: like start_origin, for tests/kern/ws_origin.py
start_pyorigin() {
	local name=$1 out pid port
	shift
	out="$BATS_TEST_TMPDIR/origin-$name.out"
	"$PYTHON" "$WS_ORIGIN" -p 0 -n "$name" -l "$(origin_log "$name")" "$@" \
		>"$out" 2>"$BATS_TEST_TMPDIR/origin-$name.err" 3>&- &
	pid=$!
	record_pid "$pid" "origin-$name"
	wait_until 5 _origin_ready "$out" "$pid" || true
	port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out" | head -1)
	[[ -n $port ]] || {
		cat "$BATS_TEST_TMPDIR/origin-$name.err" >&2
		return 1
	}
	ORIGIN_PORTS["$name"]=$port
	ORIGIN_PIDS["$name"]=$pid
	ORIGIN_PORT=$port
}

# ---- reading the maps and the daemon ----

# field KEY TEXT: the value of KEY=value in TEXT (first occurrence)
field() {
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -1
}

kern_counter() { # NAME: spliced_kern, summed over CPUs
	field "$1" "$("$PYTHON" "$MAPS" kern "$SPLICED_PIN")"
}

server_field() { # SERVER FIELD: from spliced_servers
	field "$2" "$("$PYTHON" "$MAPS" server "$SPLICED_PIN" "$1")"
}

conns_count() { # entries in spliced_conns
	"$PYTHON" "$MAPS" conns "$SPLICED_PIN" | head -1
}

socks_in_use() { # spliced_socks slots with any non-zero field
	"$PYTHON" "$MAPS" socks "$SPLICED_PIN" | sed -n 's/^in_use=//p'
}

fd_count() {
	find "/proc/$SPLICED_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# info TEXT: a measurement, shown in the TAP output
info() {
	echo "# $*" >&3
}

# tunnel ARGS...: tunnel_client.py against spliced; fails unless it prints result=ok
tunnel() {
	run timeout 150 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" "$@"
	echo "$output"
	[[ $status -eq 0 && $output == *result=ok* ]] || fail "tunnel client: status $status"
}

_server_kern_grew() { # SERVER UP0 DOWN0
	local up down
	up=$(server_field "$1" kern_bytes_up)
	down=$(server_field "$1" kern_bytes_down)
	((up > $2 && down > $3))
}

_conns_empty() { [[ $(conns_count) -eq 0 ]]; }
_conns_are() { [[ $(conns_count) -eq $1 ]]; }
_redirected_over() { (($(kern_counter redirect_bytes) > $1)); }
_user_up_at_least() { (($(server_field "$1" user_bytes_up) >= $2)); }
_fds_back() { [[ $(fd_count) -le $1 ]]; }

# no connection to the origin (either end) left ESTABLISHED; the daemon holds no half-dead
# socket (CLOSE-WAIT) towards the client or the origin. The origin's own socket may sit in
# CLOSE-WAIT: it got the FIN (EOF) and is still blocked writing its echo.
_tunnel_gone() { # ORIGIN_PORT
	[[ -z $(ss -Htn state established "( sport = :$1 or dport = :$1 )") ]] &&
		[[ -z $(ss -Htn state established "( sport = :$SPLICED_PORT )") ]] &&
		[[ -z $(ss -Htn state close-wait "( dport = :$1 or sport = :$SPLICED_PORT )") ]]
}

# ---- tests ----

@test "kernel: 300 MB tunnel echo is byte-exact, redirected by the verdict, counted per server" {
	need_root
	kern_setup
	require_kernel
	local n=$((300 * MIB)) r0 r1 up0 down0 up1 down1 delta line
	r0=$(kern_counter redirect_bytes)
	up0=$(server_field ws kern_bytes_up)
	down0=$(server_field ws kern_bytes_down)

	tunnel --bytes "$n" --timeout 120
	assert_equal "$n" "$(field received "$output")" "bytes echoed"

	r1=$(kern_counter redirect_bytes)
	delta=$((r1 - r0))
	info "redirect_bytes +$delta for 2 x $n bytes tunneled" \
		"($(awk -v d=$delta -v n=$n 'BEGIN { printf "%.1f", 100 * d / (2 * n) }')%);" \
		"$(field mbps "$output") MB/s; $("$PYTHON" "$MAPS" kern "$SPLICED_PIN")"
	# the kernel carried this tunnel (the share depends on scheduling: when the python peer
	# lags, the in-flight cap passes data up to the daemon, which is correct, so only a floor
	# is asserted here; the per-direction check follows below), never more than was sent
	((delta >= 1048576)) || fail "redirect_bytes grew by $delta, expected the kernel to carry the tunnel"
	((delta <= 2 * n)) || fail "redirect_bytes grew by $delta: more than the $((2 * n)) bytes tunneled"

	# per-server totals are published every second
	wait_until 3 _server_kern_grew ws "$up0" "$down0" ||
		fail "spliced_servers kern_bytes_up/down did not grow: $("$PYTHON" "$MAPS" server "$SPLICED_PIN" ws)"
	up1=$(server_field ws kern_bytes_up)
	down1=$(server_field ws kern_bytes_down)
	info "server ws: kern_bytes_up +$((up1 - up0)) kern_bytes_down +$((down1 - down0))"
	((up1 - up0 <= n && down1 - down0 <= n)) || fail "kernel moved more than $n bytes one way"
	((up1 > up0 && down1 > down0)) || fail "the kernel did not carry both directions"
	# the only connection of this daemon: the server totals are exactly what the verdict moved
	assert_equal "$delta" "$((up1 - up0 + down1 - down0))" "kern_bytes_up + kern_bytes_down"

	# the access log line counts the kernel's bytes too
	wait_lines "$ACCESS_LOG" 1 5
	line=$(grep 'status=101' "$ACCESS_LOG")
	echo "$line"
	(($(field bytes_in "$line") >= n && $(field bytes_out "$line") >= n)) ||
		fail "access log bytes_in/bytes_out below $n: $line"
	wait_until 3 _conns_empty || fail "spliced_conns not empty after the tunnel"
}

@test "kernel: --no-splice: 300 MB tunnel echo is byte-exact and nothing is redirected" {
	need_root
	SPLICED_ARGS=--no-splice kern_setup
	require_maps
	grep -q 'kernel data path disabled' "$SPLICED_ERR" || fail "no 'disabled' line in the log"
	local n=$((300 * MIB)) s
	tunnel --bytes "$n" --timeout 120
	assert_equal "$n" "$(field received "$output")" "bytes echoed"
	info "--no-splice: $(field mbps "$output") MB/s"
	assert_equal 0 "$(kern_counter redirect_bytes)" "redirect_bytes"
	# the daemon copied everything itself
	wait_until 3 _user_up_at_least ws "$n" || true
	s=$("$PYTHON" "$MAPS" server "$SPLICED_PIN" ws)
	echo "$s"
	(($(field user_bytes_up "$s") >= n && $(field user_bytes_down "$s") >= n)) ||
		fail "user_bytes_up/down below $n: $s"
	assert_equal 0 "$(field kern_bytes_up "$s")" "kern_bytes_up"
	assert_equal 0 "$(field kern_bytes_down "$s")" "kern_bytes_down"
}

@test "kernel: 'splice off' on one listener keeps its tunnels in userspace, the other uses the kernel" {
	need_root
	start_origin ws
	start_spliced "global { max_connections 256; }
listener off { bind 127.0.0.1:@PORT@; splice off; route { pool p; } }
listener on { bind 127.0.0.1:@PORT2@; route { pool p; } }
pool p { server ws 127.0.0.1:$ORIGIN_PORT; }"
	require_kernel
	local n=$((32 * MIB)) r0 r1
	r0=$(kern_counter redirect_bytes)
	tunnel --bytes "$n" --timeout 60
	r1=$(kern_counter redirect_bytes)
	assert_equal "$r0" "$r1" "redirect_bytes after a tunnel on the 'splice off' listener"
	run timeout 90 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT2" --bytes "$n" --timeout 60
	echo "$output"
	[[ $status -eq 0 && $output == *result=ok* ]] || fail "tunnel on the 'on' listener"
	r1=$(kern_counter redirect_bytes)
	info "splice on listener: redirect_bytes +$((r1 - r0)) for 2 x $n"
	((r1 - r0 >= 1048576)) || fail "the 'on' listener's tunnel was not redirected (+$((r1 - r0)))"
}

@test "kernel: slow reader: 200 MB intact, queues and daemon memory stay bounded by the cap" {
	need_root
	local cap=$((4 * MIB)) n=$((200 * MIB)) bound nominal tcp_limit rmem wmem r0 r1 p0 p1 out mw
	kern_setup "splice_cap 4m;"
	require_kernel
	r0=$(kern_counter redirect_bytes)
	p0=$(kern_counter pass_skbs)
	# the client sends 200 MB as fast as the proxy takes it and reads the echo at 5 MB/s
	# (sleeping between reads) for 4 s, then at full speed; its own buffers are pinned (1 MiB)
	# so what piles up is the proxy's. memwatch samples the 4 sockets of the tunnel, the
	# daemon's VmRSS and the host's TCP memory while it runs.
	run timeout 150 "$PYTHON" "$MEMWATCH" --pid "$SPLICED_PID" \
		--ports "$SPLICED_PORT,$ORIGIN_PORT" --timeout 120 -- \
		"$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --bytes "$n" --read-rate 5m --slow-secs 4 \
		--read-size 64k --rcvbuf 1m --sndbuf 1m --timeout 110
	echo "$output"
	out=$(grep '^result=' <<<"$output")
	mw=$(grep '^memwatch ' <<<"$output")
	[[ $status -eq 0 && $out == result=ok* ]] || fail "slow reader tunnel: status $status"
	assert_equal "$n" "$(field received "$out")" "bytes echoed"
	r1=$(kern_counter redirect_bytes)
	p1=$(kern_counter pass_skbs)
	# what plain TCP may hold in the 4 sockets on this host: receive and send buffers at their
	# autotuning maximum. The bound is the cap plus that (at least 64 MiB).
	read -r _ _ rmem </proc/sys/net/ipv4/tcp_rmem
	read -r _ _ wmem </proc/sys/net/ipv4/tcp_wmem
	tcp_limit=$((4 * (rmem + wmem)))
	nominal=$((cap + 64 * MIB))
	bound=$((cap + (tcp_limit > 64 * MIB ? tcp_limit : 64 * MIB)))
	info "slow reader: $(field secs "$out") s; end-to-end in flight max $(($(field max_inflight "$out") / 1024)) KiB" \
		"(client send() minus recv(): every queue both ways, incl. sockmap queues ss cannot see);" \
		"socket queues (Recv-Q+Send-Q, $(field socks_max "$mw") sockets) max $(($(field q_max "$mw") / 1024)) KiB," \
		"skmem r+w+bl max $(($(field skmem_max "$mw") / 1024)) KiB; bound $((bound / 1024)) KiB (cap + 4 x (tcp_rmem[2] + tcp_wmem[2]));" \
		"cap + 64 MiB = $((nominal / 1024)) KiB $( (($(field q_max "$mw") < nominal)) && echo kept || echo EXCEEDED)"
	info "slow reader: daemon VmRSS $(field rss_start_kb "$mw") -> max $(field rss_max_kb "$mw") KiB;" \
		"host TCP mem $(field tcp_mem_start_kb "$mw") -> max $(field tcp_mem_max_kb "$mw") KiB;" \
		"MemAvailable drop max $(field memavail_drop_max_kb "$mw") KiB;" \
		"redirect_bytes +$((r1 - r0)) ($(awk -v d=$((r1 - r0)) -v n=$n 'BEGIN { printf "%.1f", 100 * d / (2 * n) }')%), pass_skbs +$((p1 - p0))"
	grep '^memwatch-sock ' <<<"$output" | sed 's/^/# /' >&3
	(($(field q_max "$mw") < bound)) ||
		fail "socket queues reached $(field q_max "$mw") bytes (bound $bound)"
	# everything between the client's send() and its recv(): with the cap broken the verdict
	# queues the whole stream in the kernel (~200 MB here) where ss does not see it
	(($(field max_inflight "$out") < bound)) ||
		fail "end-to-end bytes in flight reached $(field max_inflight "$out") (bound $bound)"
	(($(field rss_max_kb "$mw") - $(field rss_start_kb "$mw") < 32 * 1024)) ||
		fail "daemon VmRSS grew by more than 32 MiB"
	(($(field samples "$mw") >= 5)) || fail "too few memory samples"
}

@test "kernel: 8 parallel 50 MB tunnels are all intact (distinct patterns)" {
	need_root
	kern_setup
	require_kernel
	local n=$((50 * MIB)) i pid pids=() rc=0 r0 r1 out
	r0=$(kern_counter redirect_bytes)
	for i in 1 2 3 4 5 6 7 8; do
		# distinct seeds: a byte of one tunnel delivered on another is caught
		timeout 150 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --bytes "$n" --seed "$((1000 + i))" \
			--timeout 120 >"$BATS_TEST_TMPDIR/par-$i.out" 2>&1 3>&- &
		pid=$!
		record_pid "$pid" "client-$i"
		pids+=("$pid")
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || rc=1
	done
	for i in 1 2 3 4 5 6 7 8; do
		out=$(cat "$BATS_TEST_TMPDIR/par-$i.out")
		echo "tunnel $i: $out"
		[[ $out == result=ok*" received=$n "* ]] || rc=1
	done
	[[ $rc -eq 0 ]] || fail "some parallel tunnel failed"
	r1=$(kern_counter redirect_bytes)
	info "8 x $n: redirect_bytes +$((r1 - r0)) ($(awk -v d=$((r1 - r0)) -v n=$((8 * n)) 'BEGIN { printf "%.1f", 100 * d / (2 * n) }')%)"
	((r1 - r0 <= 16 * n)) || fail "redirected more than was sent"
	wait_until 3 _conns_empty || fail "spliced_conns not empty: $("$PYTHON" "$MAPS" conns "$SPLICED_PIN")"
}

@test "kernel: the connection table holds an open tunnel and forgets it when it closes" {
	need_root
	kern_setup
	require_kernel
	local pid t lport
	timeout 60 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --bytes $((4 * MIB)) --hold-ms 1500 \
		--timeout 30 >"$BATS_TEST_TMPDIR/hold.out" 2>&1 3>&- &
	pid=$!
	record_pid "$pid" client
	wait_until 5 _conns_are 1 || fail "spliced_conns never held the tunnel"
	t=$("$PYTHON" "$MAPS" conns "$SPLICED_PIN" | sed -n 2p)
	echo "$t"
	assert_contains "$t" "upstream=127.0.0.1:$ORIGIN_PORT "
	assert_contains "$t" "pool=p server=ws "
	assert_contains "$t" "client=127.0.0.1"
	assert_equal 3 "$(field flags "$t")" "flags (KERNEL|TUNNEL)"
	(($(field start_ns "$t") > 0)) || fail "start_ns not set"
	# the client's address:port (include/splice_abi.h: "char client[48]; /* address:port */")
	lport=$(ss -Htn state established "( dport = :$SPLICED_PORT )" | awk '{ print $3 }' |
		sed 's/.*://' | head -1)
	wait "$pid" || fail "client: $(cat "$BATS_TEST_TMPDIR/hold.out")"
	grep -q '^result=ok' "$BATS_TEST_TMPDIR/hold.out" || fail "$(cat "$BATS_TEST_TMPDIR/hold.out")"
	wait_until 3 _conns_empty || fail "entry left in spliced_conns"
	assert_equal "127.0.0.1:$lport" "$(field client "$t")" "spliced_conns client (address:port)"
}

@test "kernel: client half-closes first: the origin finishes the echo, the client gets all of it, then EOF" {
	need_root
	kern_setup
	require_kernel
	# 8 MB sent and half-closed before the client reads anything (reading starts 1 s after
	# the 101): the FIN must wait behind the bytes still queued towards the origin
	tunnel --bytes $((8 * MIB)) --read-delay-ms 1000 --timeout 60
	assert_equal $((8 * MIB)) "$(field received "$output")" "bytes before EOF"
	# and with the echo read as it comes
	tunnel --bytes $((64 * MIB)) --timeout 60
	wait_until 3 _tunnel_gone "$ORIGIN_PORT" || fail "tunnel sockets left: $(ss -tn)"
}

@test "kernel: origin half-closes first: the client gets all of it and EOF, then its own bytes still reach the origin" {
	need_root
	local n=$((16 * MIB)) m=$((24 * MIB)) line
	start_pyorigin sf --server-first "$n" --seed 99
	start_spliced "global { max_connections 256; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server sf 127.0.0.1:$ORIGIN_PORT; }"
	require_kernel
	tunnel --server-first "$n" --seed 99 --then-send "$m" --send-seed 7 --timeout 60
	wait_lines "$(origin_log sf)" 1 5 || fail "origin logged nothing"
	line=$(cat "$(origin_log sf)")
	echo "origin: $line"
	assert_equal "$m" "$(field received "$line")" "bytes the origin received after its half-close"
	assert_equal "$(field sent_sha256 "$output")" "$(field sha256 "$line")" "sha256 at the origin"
}

@test "kernel: client RST mid-tunnel closes the upstream and the daemon keeps serving" {
	need_root
	kern_setup
	require_kernel
	local fds0 t0 t1
	fds0=$(fd_count)
	# 32 MB pushed while only part of the echo is read: queues both ways are loaded when the
	# client aborts (SO_LINGER 0 -> RST)
	tunnel --rst-after $((32 * MIB)) --timeout 30
	t0=$(now_ms)
	wait_until 5 _tunnel_gone "$ORIGIN_PORT" ||
		fail "upstream not closed 5 s after the client's RST: $(ss -tn "( sport = :$ORIGIN_PORT or dport = :$ORIGIN_PORT or sport = :$SPLICED_PORT )")"
	t1=$(now_ms)
	info "upstream closed $((t1 - t0)) ms after the client's RST"
	ss -tn "( sport = :$ORIGIN_PORT or dport = :$ORIGIN_PORT )"
	wait_until 3 _conns_empty || fail "spliced_conns entry left after RST"
	wait_until 3 _fds_back "$fds0" || fail "daemon fds: $fds0 before, $(fd_count) after"
	# still serving: a plain request and a new tunnel
	assert_equal 200 "$(http_code "$(url /size/100)")" "status of a request after the RST"
	tunnel --bytes $((8 * MIB)) --timeout 30
}

@test "kernel: 500 short tunnels leave no spliced_conns entries, slots or fds behind" {
	need_root
	kern_setup
	require_kernel
	local fds0 fds1 slots
	fds0=$(fd_count)
	assert_equal 0 "$(conns_count)" "spliced_conns before"
	tunnel --short 500 --payload 10 --threads 4 --timeout 60
	wait_until 5 _conns_empty || fail "spliced_conns after: $("$PYTHON" "$MAPS" conns "$SPLICED_PIN" | head -5)"
	wait_until 5 _fds_back "$fds0" || true
	fds1=$(fd_count)
	slots=$(socks_in_use)
	info "500 short tunnels in $(field secs "$output") s; daemon fds $fds0 -> $fds1; spliced_socks slots in use $slots"
	assert_equal "$fds0" "$fds1" "daemon fd count"
	assert_equal 0 "$slots" "spliced_socks slots in use"
	wait_lines "$ACCESS_LOG" 500 5 || fail "access log has $(file_lines "$ACCESS_LOG") lines, expected 500"
	assert_equal 500 "$(grep -c 'status=101' "$ACCESS_LOG")" "101 lines in the access log"
}

@test "kernel: bytes pipelined behind the upgrade request (before the 101) arrive in order" {
	need_root
	kern_setup
	require_kernel
	# 64 KiB in the same write as the head, the rest after the 101
	tunnel --bytes $((16 * MIB)) --pipeline 65536 --timeout 60
	# all 32 MB streamed without waiting for the 101
	tunnel --bytes $((32 * MIB)) --pipeline $((1 * MIB)) --no-wait --timeout 60
}

@test "kernel: bytes pipelined while the origin delays its 101 pile up in the proxy and still arrive in order" {
	need_root
	start_pyorigin slow --delay-101-ms 300
	start_spliced "global { max_connections 256; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server slow 127.0.0.1:$ORIGIN_PORT; }"
	require_kernel
	local r0 r1
	r0=$(kern_counter redirect_bytes)
	tunnel --bytes 20 --pipeline 20 --timeout 30
	tunnel --bytes $((32 * MIB)) --pipeline $((4 * MIB)) --no-wait --timeout 60
	r1=$(kern_counter redirect_bytes)
	info "delayed 101: redirect_bytes +$((r1 - r0)) for 2 x $((32 * MIB))"
	wait_lines "$(origin_log slow)" 2 5
	cat "$(origin_log slow)"
	grep -q "received=$((32 * MIB)) sent=$((32 * MIB))" "$(origin_log slow)" ||
		fail "origin did not see exactly 32 MiB"
}

@test "kernel: CONNECT tunnel (200) goes through the kernel byte-exact" {
	need_root
	start_pyorigin cn
	start_spliced "global { max_connections 256; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server cn 127.0.0.1:$ORIGIN_PORT; }"
	require_kernel
	local n=$((64 * MIB)) r0 r1
	r0=$(kern_counter redirect_bytes)
	tunnel --connect --bytes "$n" --timeout 60
	r1=$(kern_counter redirect_bytes)
	info "CONNECT: redirect_bytes +$((r1 - r0)) for 2 x $n"
	((r1 - r0 >= 1048576 && r1 - r0 <= 2 * n)) || fail "redirect_bytes +$((r1 - r0))"
	wait_lines "$ACCESS_LOG" 1 5
	grep -q '"CONNECT .*status=200 ' "$ACCESS_LOG" || fail "no CONNECT line in the access log"
}

@test "kernel: an upgrade after keep-alive requests on the same connections is byte-exact" {
	need_root
	kern_setup
	require_kernel
	local n=$((64 * MIB)) r0 r1
	r0=$(kern_counter redirect_bytes)
	# 3 plain requests first: both sockets carry bytes from before their insertion
	tunnel --get-first 3 --bytes "$n" --timeout 60
	tunnel --get-first 1 --bytes "$n" --pipeline 100k --no-wait --timeout 60
	r1=$(kern_counter redirect_bytes)
	info "after keep-alive requests: redirect_bytes +$((r1 - r0)) for 4 x $n"
	((r1 - r0 >= 1048576)) || fail "tunnels after keep-alive requests not redirected"
}

@test "kernel: the origin dying mid-tunnel closes the client's side too" {
	need_root
	start_pyorigin doomed
	start_spliced "global { max_connections 256; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server doomed 127.0.0.1:$ORIGIN_PORT; }"
	require_kernel
	local pid rc=0 fds0 out
	fds0=$(fd_count)
	# the client streams (and reads the echo) until the tunnel breaks; its watchdog gives up
	# after 15 s (exit 3)
	timeout 60 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --bytes 4g --timeout 15 \
		>"$BATS_TEST_TMPDIR/doomed.out" 2>&1 3>&- &
	pid=$!
	record_pid "$pid" client
	wait_until 10 _redirected_over $((16 * MIB)) ||
		fail "tunnel did not start"
	# a killed process closes its sockets: FIN, or RST when unread data was queued
	kill -KILL "${ORIGIN_PIDS[doomed]}"
	wait "$pid" || rc=$?
	out=$(cat "$BATS_TEST_TMPDIR/doomed.out")
	echo "client (rc $rc): $out"
	# the client must be told (EOF or RST) and stop: not run into its own watchdog (rc 3)
	[[ $rc -eq 1 && $out == result=fail* && $out != *reason=timeout* ]] ||
		fail "client was not disconnected when the origin died"
	wait_until 3 _conns_empty || fail "spliced_conns entry left"
	wait_until 3 _fds_back "$fds0" || fail "daemon fds: $fds0 before, $(fd_count) after"
}

@test "kernel: an active kernel-only tunnel outlives 'timeout tunnel'; an idle one is closed" {
	need_root
	kern_setup "timeout tunnel 3s;"
	require_kernel
	# 100 MB paced at 20 MB/s both ways: 5 s of traffic that the verdict moves and the daemon
	# never reads itself (it gets no socket event for it)
	tunnel --bytes $((100 * MIB)) --send-rate 20m --send-size 256k --timeout 60
	# silent after a 64 KiB echo: closed after about 3 s
	tunnel --idle-wait 15 --bytes 65536 --timeout 30
	info "idle tunnel closed by $(field closed_by "$output") after $(field after "$output") s (timeout tunnel 3s)"
}

@test "kernel: a tunnel closed by 'timeout tunnel' is still logged and its kernel bytes counted" {
	need_root
	kern_setup "timeout tunnel 1s;"
	require_kernel
	local r0 r1 up0 down0 up1 down1
	r0=$(kern_counter redirect_bytes)
	up0=$(server_field ws kern_bytes_up)
	down0=$(server_field ws kern_bytes_down)
	tunnel --idle-wait 10 --bytes $((1 * MIB)) --timeout 30
	r1=$(kern_counter redirect_bytes)
	info "timed-out tunnel: redirect_bytes +$((r1 - r0))"
	wait_lines "$ACCESS_LOG" 1 3 || fail "no access log line for the tunnel closed by its timeout"
	grep -q 'status=101' "$ACCESS_LOG" || fail "no 101 line: $(cat "$ACCESS_LOG")"
	wait_until 3 _server_kern_grew ws "$up0" "$down0" ||
		fail "spliced_servers kern_bytes_up/down not updated: $("$PYTHON" "$MAPS" server "$SPLICED_PIN" ws)"
	up1=$(server_field ws kern_bytes_up)
	down1=$(server_field ws kern_bytes_down)
	assert_equal "$((r1 - r0))" "$((up1 - up0 + down1 - down0))" "kern_bytes_up + kern_bytes_down"
}

@test "kernel: idle kernel tunnels cost no daemon CPU (no busy polling)" {
	need_root
	kern_setup
	require_kernel
	local pid hz c0 c1 used
	hz=$(getconf CLK_TCK)
	timeout 60 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --many-idle 200 --hold 5 \
		--timeout 40 >"$BATS_TEST_TMPDIR/idle.out" 2>&1 3>&- &
	pid=$!
	record_pid "$pid" client
	wait_until 20 grep -q '^result=' "$BATS_TEST_TMPDIR/idle.out" || fail "tunnels not open"
	grep -q '^result=ok' "$BATS_TEST_TMPDIR/idle.out" || fail "$(cat "$BATS_TEST_TMPDIR/idle.out")"
	sleep 0.3
	c0=$(awk '{ print $14 + $15 }' "/proc/$SPLICED_PID/stat")
	sleep 3
	c1=$(awk '{ print $14 + $15 }' "/proc/$SPLICED_PID/stat")
	used=$(((c1 - c0) * 1000 / hz))
	info "200 idle kernel tunnels: daemon CPU $used ms in 3 s"
	wait "$pid" || true
	cat "$BATS_TEST_TMPDIR/idle.out"
	# an epoll-driven daemon uses ~0 (the userspace path does); 150 ms is 5% of one CPU
	((used < 150)) || fail "200 idle tunnels used $used ms of daemon CPU in 3 s"
}

@test "kernel: SIGINT with live kernel tunnels: the daemon exits at once, unpins its maps, clients are disconnected" {
	need_root
	kern_setup
	require_kernel
	local idle active rc=0 pin=$SPLICED_PIN
	timeout 60 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --many-idle 20 --hold 6 \
		--timeout 30 >"$BATS_TEST_TMPDIR/idle.out" 2>&1 3>&- &
	idle=$!
	record_pid "$idle" idle-clients
	wait_until 20 grep -q '^result=' "$BATS_TEST_TMPDIR/idle.out" || fail "tunnels not open"
	timeout 60 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --bytes 4g --timeout 15 \
		>"$BATS_TEST_TMPDIR/active.out" 2>&1 3>&- &
	active=$!
	record_pid "$active" active-client
	wait_until 10 _redirected_over $((16 * MIB)) ||
		fail "active tunnel did not start"
	kill -INT "$SPLICED_PID"
	wait_until 5 _proc_gone "$SPLICED_PID" || fail "daemon still running 5 s after SIGINT"
	[[ ! -e $pin ]] || fail "pin directory left: $(ls "$pin")"
	wait "$active" || rc=$?
	echo "active: rc $rc $(cat "$BATS_TEST_TMPDIR/active.out")"
	((rc == 1)) || fail "active tunnel client was not disconnected (rc $rc)"
	wait "$idle" || true
	cat "$BATS_TEST_TMPDIR/idle.out"
	grep -q 'closed_by_peer=20' "$BATS_TEST_TMPDIR/idle.out" || fail "idle tunnels not all closed"
}

@test "kernel: after dropping to user nobody, the kernel still carries tunnels" {
	need_root
	kern_setup "user nobody;"
	require_kernel
	grep -q 'privdrop: running as nobody' "$SPLICED_ERR" || fail "no privdrop line"
	grep -q "^Uid:[[:space:]]*65534[[:space:]]65534[[:space:]]65534[[:space:]]65534" \
		"/proc/$SPLICED_PID/status" || fail "$(grep Uid "/proc/$SPLICED_PID/status")"
	local r0 r1
	r0=$(kern_counter redirect_bytes)
	tunnel --bytes $((50 * MIB)) --timeout 60
	assert_equal $((50 * MIB)) "$(field received "$output")" "bytes echoed"
	r1=$(kern_counter redirect_bytes)
	info "after privdrop: redirect_bytes +$((r1 - r0)); $(grep '^CapEff' "/proc/$SPLICED_PID/status")"
	((r1 - r0 >= MIB)) || fail "the kernel did not carry the tunnel after privdrop"
}

@test "kernel: a kernel tunnel survives a live upgrade byte-exact; the new process keeps carrying it" {
	need_root
	cp "$SPLICED_BIN" "$BATS_TEST_TMPDIR/spliced"
	SPLICED_BIN=$BATS_TEST_TMPDIR/spliced
	kern_setup
	require_kernel
	local n=$((400 * MIB)) pid r_before r_after before new
	timeout 150 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --bytes "$n" --send-rate 40m \
		--timeout 120 >"$BATS_TEST_TMPDIR/t.out" 2>&1 3>&- &
	pid=$!
	record_pid "$pid" tunnel-client
	wait_until 20 _redirected_over $((16 * MIB)) || fail "tunnel did not start"
	before=$(grep -c 'started: .*pid' "$SPLICED_ERR")
	kill -USR2 "$SPLICED_PID"
	wait_until 20 grep -q 'upgrade: complete' "$SPLICED_ERR" || fail "upgrade did not complete"
	new=$(sed -n 's/.*started: .*pid \([0-9]*\)$/\1/p' "$SPLICED_ERR" | tail -1)
	record_pid "$new" spliced-new
	(($(grep -c 'started: .*pid' "$SPLICED_ERR") > before))
	_proc_gone "$SPLICED_PID" || wait_until 10 _proc_gone "$SPLICED_PID"
	r_before=$(kern_counter redirect_bytes)
	wait "$pid" || fail "tunnel client failed: $(cat "$BATS_TEST_TMPDIR/t.out")"
	cat "$BATS_TEST_TMPDIR/t.out"
	grep -q result=ok "$BATS_TEST_TMPDIR/t.out"
	assert_equal "$n" "$(field received "$(cat "$BATS_TEST_TMPDIR/t.out")")" "bytes echoed"
	r_after=$(kern_counter redirect_bytes)
	info "upgrade mid-tunnel: kernel carried +$((r_after - r_before)) bytes after the switch"
	((r_after > r_before)) || fail "the kernel stopped carrying the tunnel after the upgrade"
	grep -q 'upgrade: 1 connection handed over' "$SPLICED_ERR"
	# the slots: once the tunnel closed, nothing is left in the connection table
	SPLICED_PID=$new
	wait_until 10 _conns_empty || fail "connection table not empty: $(conns_count)"
}

# ---- bodies (splice_min_body, splice on) ----

@test "kernel: bodies of splice_min_body and more: a 256 MiB download and upload go through the kernel, digests equal; a small body stays on splice(2)" {
	need_root
	start_origin o
	# the in-flight cap is lifted: with the default 4m the verdict passes data up as soon as
	# curl lags behind the origin and rarely returns (docs/KERNEL_PATH.md), so how much the
	# kernel carries would depend on scheduling; the next test runs with the default cap
	start_spliced "global { max_connections 64; splice_min_body 1m; splice_cap 1024g; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	require_kernel
	local n=$((256 * MIB)) f="$BATS_TEST_TMPDIR/up.bin" r0 r1 r2 up0 down0 up1 down1 want got
	r0=$(kern_counter redirect_bytes)
	up0=$(server_field o kern_bytes_up)
	down0=$(server_field o kern_bytes_down)

	# a pair is inserted only when neither socket has unread bytes: the origin pauses between
	# head and body, and curl waits for the 100 Continue before the upload body, so the body
	# starts at such a quiet point (without one it would stay on splice(2))
	want=$("${CURL[@]}" --max-time 60 "$(origin_url o /size/256m)" | sha_of_stream)
	got=$("${CURL[@]}" --max-time 60 "$(url '/size/256m?pause_ms=200')" | sha_of_stream)
	assert_equal "$want" "$got" "sha256 of the 256 MiB download"
	random_file "$f" 256
	want="$(sha_of_file "$f") $n"
	got=$("${CURL[@]}" --max-time 60 -H 'Expect: 100-continue' -T "$f" "$(url /upload)")
	rm -f "$f"
	assert_equal "$want" "$got" "sha256 and length of the 256 MiB upload seen by the origin"

	r1=$(kern_counter redirect_bytes)
	wait_until 3 _server_kern_grew o "$up0" "$down0" ||
		fail "spliced_servers kern_bytes_up/down did not grow: $("$PYTHON" "$MAPS" server "$SPLICED_PIN" o)"
	up1=$(server_field o kern_bytes_up)
	down1=$(server_field o kern_bytes_down)
	info "redirect_bytes +$((r1 - r0)) for 2 x $n body bytes; server o: kern_bytes_up" \
		"+$((up1 - up0)), kern_bytes_down +$((down1 - down0)); $("$PYTHON" "$MAPS" kern "$SPLICED_PIN")"
	((down1 - down0 >= n / 2)) || fail "the kernel carried $((down1 - down0)) of the $n byte download"
	((up1 - up0 >= n / 2)) || fail "the kernel carried $((up1 - up0)) of the $n byte upload"
	((down1 - down0 <= n && up1 - up0 <= n)) || fail "the kernel moved more than a body one way"
	assert_equal "$((r1 - r0))" "$((up1 - up0 + down1 - down0))" "redirect_bytes == server kern bytes"

	# below the threshold: a new connection, a 512 KiB body, nothing redirected
	want=$("${CURL[@]}" "$(origin_url o /size/512k)" | sha_of_stream)
	got=$("${CURL[@]}" "$(url /size/512k)" | sha_of_stream)
	assert_equal "$want" "$got" "sha256 of a 512 KiB download"
	r2=$(kern_counter redirect_bytes)
	assert_equal "$r1" "$r2" "redirect_bytes after a body below splice_min_body"
}

@test "kernel: 'splice on': pipelined keep-alive requests alternating two pools, every body on the kernel path: right backend, digests equal" {
	need_root
	start_origin a
	start_origin b
	start_spliced "global { max_connections 64; }
listener web {
	bind 127.0.0.1:@PORT@;
	splice on;
	route { host a.test; pool a; }
	route { host b.test; pool b; }
}
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool b { server s 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	require_kernel
	local r0 r1
	r0=$(kern_counter redirect_bytes)
	run timeout 120 "$PYTHON" "$E2E_ROOT/tests/origin/pipeline_pools.py" "$SPLICED_PORT" \
		"${ORIGIN_PORTS[a]}" --count 48 --seed 11
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"bad 0"* ]] || fail "some responses were wrong"
	r1=$(kern_counter redirect_bytes)
	# how much the kernel carries here depends on scheduling: a pair is inserted only when
	# neither socket has unread bytes, and this client never pauses (0 B in 1 of 4 runs,
	# 3.8-13 MB in the others); the previous test asserts the kernel's share of a body
	info "redirect_bytes +$((r1 - r0)) over 48 pipelined requests;" \
		"$("$PYTHON" "$MAPS" kern "$SPLICED_PIN")"
}
