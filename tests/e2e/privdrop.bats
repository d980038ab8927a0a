#!/usr/bin/env bats
# privdrop.bats - `user`: the daemon runs as that user with no capabilities (or only the ones it
# documents), keeps serving and reloading; a world-writable configuration is refused.

load helpers

need_root() { [[ $EUID -eq 0 ]] || skip "needs root to switch users"; }

status_field() { # PID FIELD: from /proc/PID/status, whitespace squeezed
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '[:space:]' ' ' | sed 's/ $//'
}

conf_user() { # [extra global text] [bind port]
	echo "global { user nobody; ${1:-} }
listener web {
	bind 127.0.0.1:${2:-@PORT@};
	route { pool a; }
}
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }"
}

@test "privdrop: user nobody: every thread runs as nobody with no capabilities and no_new_privs" {
	need_root
	start_origin a
	start_spliced "$(conf_user)"
	[ "$(backend_of "$(url /x)")" = a ]
	local t
	for t in /proc/"$SPLICED_PID"/task/*; do
		echo "$t: $(status_field "${t#/proc/}" Uid) / $(status_field "${t#/proc/}" Gid)"
		[ "$(status_field "${t#/proc/}" Uid)" = "65534 65534 65534 65534" ]
		[ "$(status_field "${t#/proc/}" Gid)" = "65534 65534 65534 65534" ]
		[ "$(status_field "${t#/proc/}" CapEff)" = 0000000000000000 ]
		[ "$(status_field "${t#/proc/}" CapPrm)" = 0000000000000000 ]
		[ "$(status_field "${t#/proc/}" NoNewPrivs)" = 1 ]
	done
	[ "$(status_field "$SPLICED_PID" Groups)" = 65534 ]
	grep -q 'privdrop: running as nobody (uid 65534, gid 65534), capabilities kept: none' "$SPLICED_ERR"
	# the pinned maps were handed over: the daemon can unpin them at exit
	[ "$(stat -c %u "$SPLICED_PIN")" = 65534 ]
}

@test "privdrop: a listener below 1024 keeps only cap_net_bind_service" {
	need_root
	start_origin a
	local p
	for p in $(seq 900 1000); do _port_used "$p" || break; done
	start_spliced "$(conf_user "" "$p")"
	SPLICED_PORT=$p
	[ "$(backend_of "$(url /x)")" = a ]
	# bit 10 = CAP_NET_BIND_SERVICE
	[ "$(status_field "$SPLICED_PID" CapEff)" = 0000000000000400 ]
	[ "$(status_field "$SPLICED_PID" CapPrm)" = 0000000000000400 ]
}

@test "privdrop: after dropping, a reload still works and reopens the access log" {
	need_root
	start_origin a
	start_origin b
	# what an installation provides: a configuration the user can read and a log directory
	files_for_nobody
	start_spliced "$(conf_user)"
	chmod o+r "$SPLICED_CONF"
	sed -i "s/pool a; }/pool b; }/; s/^pool a {/pool b { server s 127.0.0.1:${ORIGIN_PORTS[b]}; }\npool a {/" "$SPLICED_CONF"
	cat "$SPLICED_CONF"
	mv "$ACCESS_LOG" "$ACCESS_LOG.1"
	kill -HUP "$SPLICED_PID"
	wait_until 10 grep -q 'reloaded: generation 2' "$SPLICED_ERR"
	[ "$(backend_of "$(url /after)")" = b ]
	wait_until 5 grep -q 'GET /after' "$ACCESS_LOG"
}

@test "privdrop: an unknown user is refused at start with a clear error" {
	need_root
	start_origin a
	local c=$BATS_TEST_TMPDIR/u.conf
	conf_user | sed "s/@PORT@/$(free_port)/; s/user nobody/user no-such-user-xyz/" >"$c"
	run timeout 10 "$SPLICED_BIN" -d -f "$c" ${SPLICED_ARGS:-}
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"unknown user 'no-such-user-xyz'"* ]]
}

@test "privdrop: a configuration writable by every user is refused" {
	start_origin a
	local c=$BATS_TEST_TMPDIR/ww.conf
	conf_user | sed "s/@PORT@/$(free_port)/; s/user nobody;//" >"$c"
	chmod 0666 "$c"
	run "$SPLICED_BIN" -n -f "$c"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"ww.conf: writable by every user (mode 0666): refusing it"* ]]
	chmod 0644 "$c"
	run "$SPLICED_BIN" -n -f "$c"
	[ "$status" -eq 0 ]
}
