#!/usr/bin/env bats
# reload.bats - SIGHUP reload: new routing for new requests (also on kept-alive connections),
# an invalid file keeps the running configuration and reports every error, listeners added and
# removed, health state carried over, in-flight transfers finish, 20 reloads under wrk load.

load helpers

# reload_conf TEXT: write the next configuration (same ports and pin path as the running one)
reload_conf() {
	local body=${1//@PORT@/$SPLICED_PORT}
	body=${body//@PORT2@/$SPLICED_PORT2}
	_conf_with_defaults "$body" >"$SPLICED_CONF.new"
	mv -f "$SPLICED_CONF.new" "$SPLICED_CONF"
}

# hup_and_wait N: send SIGHUP and wait for the Nth "reloaded" or "reload of ... failed" line
hup_and_wait() {
	kill -HUP "$SPLICED_PID"
	wait_until 10 _reload_lines_at_least "$1"
}
_reload_lines_at_least() {
	(($(grep -cE 'reloaded: generation|reload of .* failed' "$SPLICED_ERR") >= $1))
}

two_pools() { # which pool the only route uses
	echo "listener web {
	bind 127.0.0.1:@PORT@;
	route { pool $1; }
}
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool b { server s 127.0.0.1:${ORIGIN_PORTS[b]}; }"
}

@test "reload: SIGHUP switches routing for new connections" {
	start_origin a
	start_origin b
	start_spliced "$(two_pools a)"
	[ "$(backend_of "$(url /x)")" = a ]
	reload_conf "$(two_pools b)"
	hup_and_wait 1
	grep -q 'reloaded: generation 2' "$SPLICED_ERR"
	for i in 1 2 3 4 5; do
		[ "$(backend_of "$(url /x$i)")" = b ]
	done
}

@test "reload: a kept-alive connection takes the new routing at its next request" {
	start_origin a
	start_origin b
	start_spliced "$(two_pools a)"
	# one connection: request, wait for the go, request again
	kept_alive_client 2
	reload_conf "$(two_pools b)"
	hup_and_wait 1
	kept_alive_go
	local out=$KA_OUT
	[ "$(sed -n 1p "$out" | cut -d' ' -f1,2)" = "200 a" ]
	[ "$(sed -n 2p "$out" | cut -d' ' -f1,2)" = "200 b" ]
	# the same client connection carried both
	[ "$(sed -n 1p "$out" | cut -d' ' -f3)" = "$(sed -n 2p "$out" | cut -d' ' -f3)" ]
}

@test "reload: an invalid file keeps the running configuration and reports every error" {
	start_origin a
	start_origin b
	start_spliced "$(two_pools a)"
	reload_conf "listener web {
	bind 127.0.0.1:@PORT@;
	route { pool nosuch; }
	bogus_keyword 1;
}
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	hup_and_wait 1
	grep -q 'reload of .* failed: still running generation 1' "$SPLICED_ERR"
	grep -qE "reload: .*spliced.conf:[0-9]+: .*bogus_keyword" "$SPLICED_ERR"
	grep -qE "reload: .*spliced.conf:[0-9]+: .*nosuch" "$SPLICED_ERR"
	kill -0 "$SPLICED_PID"
	[ "$(backend_of "$(url /still)")" = a ]
	# a later valid file is taken
	reload_conf "$(two_pools b)"
	hup_and_wait 2
	grep -q 'reloaded: generation 2' "$SPLICED_ERR"
	[ "$(backend_of "$(url /now)")" = b ]
}

@test "reload: a listener added and removed; the kept one never refuses" {
	start_origin a
	start_origin b
	start_spliced "$(two_pools a)"
	run "${CURL[@]}" "$(url /x "$SPLICED_PORT2")"
	[ "$status" -ne 0 ]
	reload_conf "$(two_pools a)
listener extra {
	bind 127.0.0.1:@PORT2@;
	route { pool b; }
}"
	hup_and_wait 1
	[ "$(backend_of "$(url /x "$SPLICED_PORT2")")" = b ]
	[ "$(backend_of "$(url /x)")" = a ]
	reload_conf "$(two_pools a)"
	hup_and_wait 2
	run "${CURL[@]}" "$(url /x "$SPLICED_PORT2")"
	[ "$status" -ne 0 ]
	[ "$(backend_of "$(url /x)")" = a ]
	# a bind that cannot be opened fails the reload and changes nothing
	local busy
	busy=$(free_port)
	"$PYTHON" -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$busy" &
	record_pid $! blocker
	wait_until 5 _port_listening "$busy"
	reload_conf "listener web {
	bind 127.0.0.1:@PORT@;
	route { pool b; }
}
listener extra { bind 127.0.0.1:$busy; route { pool b; } }
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool b { server s 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	hup_and_wait 3
	grep -qE "reload: .*listener extra: cannot listen on 127.0.0.1:$busy" "$SPLICED_ERR"
	[ "$(backend_of "$(url /x)")" = a ]
}

@test "reload: health state of servers that stay is carried over" {
	start_origin a
	local dead
	dead=$(free_port)
	local conf="listener web {
	bind 127.0.0.1:@PORT@;
	route { pool p; }
}
pool p {
	health tcp interval 200ms fall 1 rise 1;
	server live 127.0.0.1:${ORIGIN_PORTS[a]};
	server dead 127.0.0.1:$dead;
}"
	start_spliced "$conf"
	wait_until 10 grep -q 'server dead: up -> down' "$SPLICED_ERR"
	reload_conf "$conf"
	hup_and_wait 1
	sleep 1
	# no second "up -> down": the new configuration started from the carried state
	[ "$(grep -c 'server dead: up -> down' "$SPLICED_ERR")" -eq 1 ]
	for i in 1 2 3 4; do
		[ "$(backend_of "$(url /h$i)")" = a ]
	done
}

@test "reload: a transfer in flight finishes on the old configuration, digest intact" {
	start_origin a
	start_origin b
	start_spliced "$(two_pools a)"
	local out=$BATS_TEST_TMPDIR/dl
	# 256 MiB at a limited rate: still running during the reloads
	"${CURL[@]}" --limit-rate 64M -o "$out" -D "$out.h" "$(url /size/268435456)" &
	local cpid=$!
	record_pid "$cpid" curl
	wait_until 10 test -s "$out"
	reload_conf "$(two_pools b)"
	hup_and_wait 1
	reload_conf "$(two_pools a)"
	hup_and_wait 2
	wait "$cpid"
	[ "$(stat -c %s "$out")" -eq 268435456 ]
	[ "$(sha_of_file "$out")" = "$(${CURL[@]} "$(origin_url a /size/268435456)" | sha_of_stream)" ]
}

@test "reload: 20 reloads under wrk load, zero errors" {
	command -v wrk >/dev/null || skip "wrk not installed"
	start_origin a
	start_origin b
	start_spliced "$(two_pools a)"
	local w=$BATS_TEST_TMPDIR/wrk.out
	wrk -t2 -c32 -d12s "$(url /load)" >"$w" 2>&1 &
	local wp=$!
	record_pid "$wp" wrk
	sleep 1
	for i in $(seq 1 20); do
		if ((i % 2)); then reload_conf "$(two_pools b)"; else reload_conf "$(two_pools a)"; fi
		hup_and_wait "$i"
		sleep 0.2
	done
	wait "$wp"
	cat "$w"
	[ "$(grep -c 'reloaded: generation' "$SPLICED_ERR")" -eq 20 ]
	grep -q 'reloaded: generation 21' "$SPLICED_ERR"
	! grep -q 'Socket errors' "$w"
	! grep -q 'Non-2xx' "$w"
	grep -qE '[0-9]+ requests in' "$w"
	kill -0 "$SPLICED_PID"
}
