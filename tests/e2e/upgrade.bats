#!/usr/bin/env bats
# upgrade.bats - live upgrade on SIGUSR2: the binary at the same path is started again and takes
# the listening sockets and the established connections; a download in flight keeps its digest,
# a kept-alive connection answers its next request from the new process, a wrk load sees no
# error, the old process is gone afterwards, three upgrades in a row leave each new process the
# same descriptors; a new binary that cannot start changes nothing.

load helpers

# every test upgrades its own copy of the binary (the shared copy serves the other tests)
own_binary() {
	cp "$SPLICED_BIN" "$BATS_TEST_TMPDIR/spliced"
	SPLICED_BIN=$BATS_TEST_TMPDIR/spliced
}

one_pool() { # [upgrade_timeout] [more global settings]
	echo "global { upgrade_timeout ${1:-30s}; ${2:-} }
listener web {
	bind 127.0.0.1:@PORT@;
	route { pool a; }
}
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }"
}

# upgrade_and_wait: SIGUSR2, wait until the new process serves; sets NEW_PID
upgrade_and_wait() {
	local before
	before=$(grep -c 'started: .*pid' "$SPLICED_ERR")
	kill -USR2 "$SPLICED_PID"
	wait_until 20 _new_started "$before" || return 1
	NEW_PID=$(sed -n 's/.*started: .*pid \([0-9]*\)$/\1/p' "$SPLICED_ERR" | tail -1)
	record_pid "$NEW_PID" spliced-new
	[[ $NEW_PID != "$SPLICED_PID" ]]
}
_new_started() { (($(grep -c 'started: .*pid' "$SPLICED_ERR") > $1)); }

# download_across_upgrade SIZE RATE: a download of SIZE bytes at RATE is in flight while the
# daemon upgrades; the old process exits and every byte arrives, digest equal
download_across_upgrade() {
	local out=$BATS_TEST_TMPDIR/dl size=$1 cpid
	"${CURL[@]}" --limit-rate "$2" -o "$out" "$(url /size/$size)" &
	cpid=$!
	record_pid "$cpid" curl
	wait_until 10 test -s "$out"
	upgrade_and_wait
	wait_until 10 _proc_gone "$SPLICED_PID"
	wait "$cpid"
	[ "$(stat -c %s "$out")" -eq "$size" ]
	[ "$(sha_of_file "$out")" = "$("${CURL[@]}" "$(origin_url a /size/$size)" | sha_of_stream)" ]
}

# non_tcp_fds PID: how many descriptors PID holds, TCP sockets left out (those come and go with
# the traffic and the health checks)
non_tcp_fds() {
	local tcp
	tcp=$(awk 'NR > 1 { print $10 }' /proc/net/tcp /proc/net/tcp6 | sort -u)
	for f in /proc/"$1"/fd/*; do readlink "$f"; done 2>/dev/null |
		sed 's/^socket:\[\([0-9]*\)\]$/\1/' | grep -cvxF -f <(echo "${tcp:-none}")
}

@test "upgrade: three upgrades in a row: each new process holds the same descriptors (libcurl's are not inherited)" {
	own_binary
	start_origin a
	start_spliced "global { upgrade_timeout 30s; }
listener web { bind 127.0.0.1:@PORT@; route { pool a; } }
pool a {
	health http /health interval 50ms timeout 1s;
	server s 127.0.0.1:${ORIGIN_PORTS[a]};
}"
	local counts=() i
	for i in 1 2 3; do
		upgrade_and_wait
		wait_until 10 _proc_gone "$SPLICED_PID"
		SPLICED_PID=$NEW_PID
		assert_equal 200 "$(http_code "$(url /after$i)")"
		counts+=("$(non_tcp_fds "$SPLICED_PID")")
	done
	echo "descriptors other than TCP sockets after each upgrade: ${counts[*]}"
	assert_equal "${counts[0]} ${counts[0]} ${counts[0]}" "${counts[*]}" "descriptors per generation"
}

@test "upgrade: a download in flight survives with its digest, the old process exits" {
	own_binary
	start_origin a
	start_spliced "$(one_pool)"
	local size=$((1024 << 20))
	download_across_upgrade "$size" 200M
	grep -q "upgrade: 1 connection handed over to pid $NEW_PID, 0 finish here" "$SPLICED_ERR"
	grep -q 'upgrade: complete: the old process is gone; 1 connection adopted' "$SPLICED_ERR"
	# the new process serves and logged the transfer it finished
	[ "$(backend_of "$(url /after)")" = a ]
	wait_until 5 grep -q "GET /size/$size .*status=200" "$ACCESS_LOG"
	local logged
	logged=$(sed -n "s|.*GET /size/$size .*bytes_out=\([0-9]*\).*|\1|p" "$ACCESS_LOG")
	# the body plus a response head of a hundred-odd bytes
	((logged > size && logged < size + 400))
	# it runs the file at the path, not a deleted one
	[[ $(readlink "/proc/$NEW_PID/exe") == "$SPLICED_BIN" ]]
}

@test "upgrade: a kept-alive connection answers its next request from the new process" {
	own_binary
	start_origin a
	start_spliced "$(one_pool)"
	kept_alive_client 3
	upgrade_and_wait
	wait_until 10 _proc_gone "$SPLICED_PID"
	kept_alive_go
	local out=$KA_OUT
	[ "$(wc -l <"$out")" -eq 3 ]
	[ "$(cut -d' ' -f1,2 "$out" | sort -u)" = "200 a" ]
	[ "$(cut -d' ' -f3 "$out" | sort -u | wc -l)" -eq 1 ]
}

@test "upgrade: under wrk load, no refused or broken connection; the old process is gone" {
	command -v wrk >/dev/null || skip "wrk not installed"
	own_binary
	start_origin a
	start_spliced "$(one_pool)"
	local w=$BATS_TEST_TMPDIR/wrk.out
	wrk -t2 -c32 -d8s "$(url /load)" >"$w" 2>&1 &
	local wp=$!
	record_pid "$wp" wrk
	sleep 2
	upgrade_and_wait
	wait_until 10 _proc_gone "$SPLICED_PID"
	wait "$wp"
	cat "$w"
	! grep -q 'Socket errors' "$w"
	! grep -q 'Non-2xx' "$w"
	grep -qE '[0-9]+ requests in' "$w"
	kill -0 "$NEW_PID"
	grep -q 'upgrade: complete' "$SPLICED_ERR"
}

@test "upgrade: a new binary that cannot start leaves the old process serving; a later one works" {
	own_binary
	start_origin a
	start_spliced "$(one_pool)"
	cp "$SPLICED_BIN" "$BATS_TEST_TMPDIR/good"
	printf '#!/bin/sh\necho broken build >&2\nexit 3\n' >"$BATS_TEST_TMPDIR/bad"
	chmod +x "$BATS_TEST_TMPDIR/bad"
	mv -f "$BATS_TEST_TMPDIR/bad" "$SPLICED_BIN"
	kill -USR2 "$SPLICED_PID"
	wait_until 10 grep -q 'upgrade failed: the new process exited before it was ready' "$SPLICED_ERR"
	kill -0 "$SPLICED_PID"
	[ "$(backend_of "$(url /still)")" = a ]
	# the file is fixed: the next SIGUSR2 upgrades
	mv -f "$BATS_TEST_TMPDIR/good" "$SPLICED_BIN"
	upgrade_and_wait
	wait_until 10 _proc_gone "$SPLICED_PID"
	[ "$(backend_of "$(url /new)")" = a ]
}

@test "upgrade: a configuration the new process rejects changes nothing" {
	own_binary
	start_origin a
	start_spliced "$(one_pool)"
	echo "bogus;" >>"$SPLICED_CONF"
	kill -USR2 "$SPLICED_PID"
	wait_until 10 grep -q 'upgrade failed' "$SPLICED_ERR"
	grep -q "unknown top-level section 'bogus'" "$SPLICED_ERR"
	kill -0 "$SPLICED_PID"
	[ "$(backend_of "$(url /still)")" = a ]
}

@test "upgrade: daemonized with a pid file (what systemd Type=forking follows): the file names the new process before the old one exits" {
	own_binary
	start_origin a
	local port pidf=$BATS_TEST_TMPDIR/spliced.pid conf=$BATS_TEST_TMPDIR/d.conf old new
	port=$(free_port)
	cat >"$conf" <<EOC
global { pin_path /sys/fs/bpf/spliced-t${BASHPID}-$RANDOM; access_log off; }
listener web { bind 127.0.0.1:$port; route { pool a; } }
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }
EOC
	grep -o '/sys/fs/bpf/spliced-t[0-9-]*' "$conf" >>"$BATS_TEST_TMPDIR/.pins"
	# returns once the daemon serves, with the pid file written
	run timeout 20 "$SPLICED_BIN" -f "$conf" -P "$pidf" ${SPLICED_ARGS:-}
	[ "$status" -eq 0 ]
	old=$(cat "$pidf")
	record_pid "$old" spliced-daemon
	kill -0 "$old"
	[ "$(http_code "http://127.0.0.1:$port/x")" = 200 ]
	kill -USR2 "$old"
	wait_until 20 _proc_gone "$old"
	new=$(cat "$pidf")
	record_pid "$new" spliced-daemon-new
	[ "$new" != "$old" ]
	kill -0 "$new"
	[ "$(http_code "http://127.0.0.1:$port/y")" = 200 ]
	kill -INT "$new"
	wait_until 10 _proc_gone "$new"
	[ ! -e "$pidf" ]
}

@test "upgrade: a daemon that dropped to nobody upgrades; the new process runs as nobody with no capabilities" {
	[[ $EUID -eq 0 ]] || skip "needs root to switch users"
	own_binary
	# the new binary and configuration must be readable by nobody
	files_for_nobody
	chmod o+rx "$SPLICED_BIN"
	start_origin a
	start_spliced "$(one_pool 30s "user nobody;")"
	chmod o+r "$SPLICED_CONF"
	download_across_upgrade $((256 << 20)) 64M
	grep -q "^Uid:[[:space:]]*65534[[:space:]]65534" "/proc/$NEW_PID/status"
	grep -q "^CapEff:[[:space:]]*0000000000000000" "/proc/$NEW_PID/status"
	[ "$(backend_of "$(url /after)")" = a ]
	grep -q 'upgrade: complete' "$SPLICED_ERR"
}
