#!/usr/bin/env bats
# ops.bats - operating a live daemon: splicectl against the control socket (every verb, text and
# JSON parsed by python's json), runtime server changes that really move traffic, live
# connections (a download, a tunnel on the kernel path), hostile control clients, reload through
# the socket, the socket's file mode and stale/foreign sockets, and the Prometheus endpoint
# (exact counter deltas, histogram, errors by reason, every sample line well-formed).

load helpers

KERN_DIR="$E2E_ROOT/tests/kern"
TCLIENT="$KERN_DIR/tunnel_client.py"

# a copy of splicectl next to the other binaries (a concurrent rebuild cannot swap it)
ops_bins() {
	local dir="$BATS_RUN_TMPDIR/bin" tmp
	if [[ ! -x $dir/splicectl ]]; then
		[[ -x $E2E_ROOT/.output/splicectl ]] || {
			echo "missing .output/splicectl: run make" >&2
			return 1
		}
		mkdir -p "$dir"
		tmp=$(mktemp "$dir/.splicectl.XXXXXX")
		cp "$E2E_ROOT/.output/splicectl" "$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$dir/splicectl"
	fi
	SPLICECTL=${SPLICECTL:-$dir/splicectl}
}

eval "$(declare -f setup | sed '1s/^setup/e2e_setup/')"
setup() {
	e2e_setup
	ops_bins
	CTL_SOCK=$BATS_TEST_TMPDIR/run/control.sock
}

# ctl ARGS...: splicectl against the test's daemon, through bats' run
ctl() {
	run "$SPLICECTL" -s "$CTL_SOCK" "$@"
}

# ctl_json ARGS...: JSON answer on stdout (stderr dropped); fails unless splicectl exits 0
ctl_json() {
	"$SPLICECTL" -s "$CTL_SOCK" -j "$@" 2>/dev/null
}

# pyj EXPR < JSON: evaluate a python expression with the parsed document as `d`, print it
pyj() {
	"$PYTHON" -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1"
}

# raw_ctl BYTES_PYTHON_EXPR: send raw bytes on one control connection, print the answer
raw_ctl() {
	"$PYTHON" - "$CTL_SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(eval(sys.argv[2]))
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

# ops_setup [GLOBAL_SETTINGS]: two origins a and b behind pool p; the control socket and the
# metrics endpoint on
ops_setup() {
	start_origin a
	start_origin b
	start_spliced "global { control $CTL_SOCK; metrics 127.0.0.1:@PORT2@; ${1:-} }
listener web {
	bind 127.0.0.1:@PORT@;
	route { path /api/; pool p; }
	route { path /size/; pool p; }
}
pool p {
	server a 127.0.0.1:${ORIGIN_PORTS[a]};
	server b 127.0.0.1:${ORIGIN_PORTS[b]};
}"
}

kernel_path_on() { grep -q 'kernel data path on' "$SPLICED_ERR"; }

# backends N PATH: the X-Backend of N sequential requests, sorted and counted ("3 a 3 b")
backends() {
	local i
	for ((i = 0; i < $1; i++)); do backend_of "$(url "$2$i")"; done | sort | uniq -c |
		awk '{ printf "%s%s %s", (NR > 1 ? " " : ""), $1, $2 }'
}

# ---- splicectl: every verb ----

@test "ops: show info, pools, servers and stats, as text and as JSON" {
	ops_setup
	local i j
	for i in 1 2 3 4; do
		[[ $(http_code "$(url /api/x$i)") == 200 ]] || fail "request $i"
	done

	ctl show info
	[[ $status -eq 0 ]] || fail "show info: $status $output"
	assert_contains "$output" "pid          $SPLICED_PID"
	assert_contains "$output" "listener     web 127.0.0.1:$SPLICED_PORT"
	[[ ${lines[-1]} != OK ]] || fail "the OK line is the protocol's, not splicectl's output"
	j=$(ctl_json show info)
	assert_equal "$SPLICED_PID" "$(pyj 'd["pid"]' <<<"$j")" "info.pid"
	[[ $(pyj 'd["started"]' <<<"$j") =~ ^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T ]] || fail "info.started"
	assert_equal 1 "$(pyj 'd["generation"]' <<<"$j")" "info.generation"
	assert_equal "$SPLICED_CONF" "$(pyj 'd["config"]' <<<"$j")" "info.config"
	assert_equal "web 127.0.0.1:$SPLICED_PORT" \
		"$(pyj '" ".join([d["listeners"][0]["name"]] + d["listeners"][0]["binds"])' <<<"$j")"
	assert_equal true "$(pyj 'd["data_paths"]["splice"]' <<<"$j")"
	if kernel_path_on; then
		assert_equal true "$(pyj 'd["data_paths"]["kernel"]' <<<"$j")" "kernel path"
	else
		assert_equal false "$(pyj 'd["data_paths"]["kernel"]' <<<"$j")" "kernel path"
	fi
	(($(pyj 'd["workers"]' <<<"$j") >= 1)) || fail "workers"

	ctl show pools
	[[ $status -eq 0 ]] || fail "show pools: $output"
	assert_contains "$output" "round_robin"
	j=$(ctl_json show pools)
	assert_equal "p 2 2 4 4" "$(pyj '" ".join(str(x) for x in [d[0]["name"], d[0]["servers"], d[0]["usable"], d[0]["requests"], d[0]["status"]["2xx"]])' <<<"$j")"

	ctl show servers
	[[ $status -eq 0 ]] || fail "show servers: $output"
	assert_contains "$output" "127.0.0.1:${ORIGIN_PORTS[a]}"
	j=$(ctl_json show servers)
	assert_equal "p/a/127.0.0.1:${ORIGIN_PORTS[a]}/up/none/1 p/b/127.0.0.1:${ORIGIN_PORTS[b]}/up/none/1" \
		"$(pyj '" ".join("/".join(str(s[k]) for k in ("pool", "server", "address", "state", "admin", "weight")) for s in d)' <<<"$j")"
	# round robin: two each, all of them 2xx, bytes counted by the daemon
	assert_equal "2 2" "$(pyj '" ".join(str(s["requests"]) for s in d)' <<<"$j")" "requests per server"
	(($(pyj 'min(s["bytes"]["user_down"] for s in d)' <<<"$j") > 0)) || fail "no bytes down"
	assert_equal "- -" "$(pyj '" ".join(s["check"]["result"] for s in d)' <<<"$j")" "checks (none configured)"

	ctl show stats
	[[ $status -eq 0 ]] || fail "show stats: $output"
	assert_contains "$output" "requests_total"
	j=$(ctl_json show stats)
	assert_equal "4 4 0" "$(pyj '" ".join(str(d[k]) for k in ("requests_total", "requests_2xx", "requests_5xx"))' <<<"$j")" "requests total, 2xx, 5xx"
	assert_equal 0 "$(pyj 'd["errors"]["parse_400"]' <<<"$j")" "errors.parse_400"

	ctl show connections
	[[ $status -eq 0 ]] || fail "show connections: $output"
	assert_equal list "$(ctl_json show connections | pyj 'type(d).__name__')"
}

@test "ops: a weight set at run time survives a reload that keeps the file's weight; a new file weight wins" {
	ops_setup
	ctl server set p b weight 0
	[[ $status -eq 0 ]] || fail "weight 0: $status $output"
	# same file: the operator's weight stays (like the drain/maintenance marks)
	ctl reload
	[[ $status -eq 0 ]] || fail "reload: $output"
	assert_equal "1 0" "$(ctl_json show servers | pyj '" ".join(str(s["weight"]) for s in d)')" "after a reload of the same file"
	assert_equal "6 a" "$(backends 6 /api/k)" "b still takes nothing"
	# the file now says weight 2 for b: the file wins over the earlier run-time change
	sed -i "s/server b 127.0.0.1:${ORIGIN_PORTS[b]};/server b 127.0.0.1:${ORIGIN_PORTS[b]} weight 2;/" "$SPLICED_CONF"
	ctl reload
	[[ $status -eq 0 ]] || fail "reload: $output"
	assert_equal "1 2" "$(ctl_json show servers | pyj '" ".join(str(s["weight"]) for s in d)')" "after the file changed b's weight"
	assert_equal "2 a 4 b" "$(backends 6 /api/f)" "weights 1:2"
}

@test "ops: server set drain / maintenance / ready change the state and the traffic" {
	ops_setup
	local j
	assert_equal "3 a 3 b" "$(backends 6 /api/rr)" "before"

	ctl server set p a drain
	[[ $status -eq 0 ]] || fail "drain: $status $output"
	j=$(ctl_json show servers)
	assert_equal "draining drain" "$(pyj '" ".join([d[0]["state"], d[0]["admin"]])' <<<"$j")" "a after drain"
	assert_equal "6 b" "$(backends 6 /api/dr)" "while a drains"

	j=$(ctl_json server set p a maintenance)
	assert_equal "maintenance maintenance" "$(pyj '" ".join([d["state"], d["admin"]])' <<<"$j")"
	assert_equal "6 b" "$(backends 6 /api/mt)" "while a is in maintenance"

	ctl server set p a ready
	[[ $status -eq 0 ]] || fail "ready: $output"
	assert_equal "up none" "$(ctl_json show servers | pyj '" ".join([d[0]["state"], d[0]["admin"]])')"
	assert_equal "3 a 3 b" "$(backends 6 /api/rd)" "after ready"
}

@test "ops: server set weight reaches the balancer at run time (1:0, then 3:1)" {
	ops_setup
	ctl server set p b weight 0
	[[ $status -eq 0 ]] || fail "weight 0: $status $output"
	assert_equal "0 0" "$(ctl_json show servers | pyj '" ".join(str(d[1][k]) for k in ("weight", "lb_weight"))')"
	assert_equal "8 a" "$(backends 8 /api/w0)" "weights 1:0"
	ctl server set p a weight 3
	[[ $status -eq 0 ]] || fail "weight 3: $output"
	ctl server set p b weight 1
	[[ $status -eq 0 ]] || fail "weight 1: $output"
	# smooth weighted round robin: exactly 3 of every 4
	assert_equal "6 a 2 b" "$(backends 8 /api/w3)" "weights 3:1"

	# refused by splicectl (usage) and by the daemon (raw request)
	ctl server set p a weight 1001
	[[ $status -eq 2 ]] || fail "weight 1001: status $status"
	[[ $(raw_ctl 'b"server set p a weight -1\n"') == ERR* ]] || fail "weight -1 accepted"
	[[ $(raw_ctl 'b"server set p a weight 12x\n"') == ERR* ]] || fail "weight 12x accepted"
	ctl server set p nosuch drain
	[[ $status -eq 1 ]] || fail "unknown server: status $status"
	assert_contains "$output" "no server 'nosuch' in pool 'p'"
	ctl server set nopool a ready
	[[ $status -eq 1 ]] || fail "unknown pool: status $status"
	assert_equal "3 1" "$(ctl_json show servers | pyj '" ".join(str(s["weight"]) for s in d)')" "weights unchanged by refused commands"
}

@test "ops: show connections lists a live download with its client, upstream, pool, server and bytes" {
	ops_setup
	local out=$BATS_TEST_TMPDIR/dl.out pid j lport
	# 64 MiB at 4 MiB/s: open for the whole test, killed at the end
	"${CURL[@]}" --limit-rate 4M -o /dev/null "$(url /size/67108864)" >"$out" 2>&1 3>&- &
	pid=$!
	record_pid "$pid" curl
	_has_download() {
		j=$(ctl_json show connections)
		[[ $(pyj 'len([c for c in d if c["state"] == "exchange" and c["bytes"]["user_down"] > 0])' <<<"$j") -eq 1 ]]
	}
	wait_until 10 _has_download || fail "no live download in: $j"
	lport=$(ss -Htn state established "( dport = :$SPLICED_PORT )" | awk '{ print $3 }' | sed 's/.*://' | head -1)
	assert_equal "web 127.0.0.1:$lport p exchange" \
		"$(pyj '" ".join(str(d[0][k]) for k in ("listener", "client", "pool", "state"))' <<<"$j")"
	local srv up
	srv=$(pyj 'd[0]["server"]' <<<"$j")
	up=$(pyj 'd[0]["upstream"]' <<<"$j")
	assert_equal "127.0.0.1:${ORIGIN_PORTS[$srv]}" "$up" "upstream of server $srv"
	# bodies move with splice(2) on both data paths (--no-splice only turns the BPF path off)
	assert_equal splice "$(pyj 'd[0]["path"]' <<<"$j")" "path"
	(($(pyj 'd[0]["age_ms"]' <<<"$j") >= 0)) || fail "age"
	assert_equal 0 "$(pyj 'd[0]["bytes"]["kernel_down"]' <<<"$j")" "kernel bytes of a download"
	ctl show connections
	assert_contains "$output" "127.0.0.1:$lport"
	assert_contains "$output" "splice"
	# it keeps moving: a later snapshot shows more bytes
	local b1 b2
	b1=$(pyj 'd[0]["bytes"]["user_down"]' <<<"$j")
	_grew() { b2=$(ctl_json show connections | pyj 'max([c["bytes"]["user_down"] for c in d] + [0])'); ((b2 > b1)); }
	wait_until 10 _grew || fail "user_down stayed at $b1"
	(($(ctl_json show stats | pyj 'd["bytes_splice_down"]') > 0)) || fail "no body bytes by splice(2)"
	stop_pid "$pid"
	_no_conns() { [[ $(ctl_json show connections | pyj 'len(d)') -eq 0 ]]; }
	wait_until 5 _no_conns || fail "the download is still listed after the client left"
}

@test "ops: show connections shows a tunnel and the path it takes (kernel unless --no-splice)" {
	start_origin ws
	start_spliced "global { control $CTL_SOCK; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server ws 127.0.0.1:$ORIGIN_PORT; }"
	local pid j n=$((3 << 20)) out=$BATS_TEST_TMPDIR/tunnel.out
	# the client echoes n bytes, then keeps the tunnel open for 3 s
	timeout 60 "$PYTHON" "$TCLIENT" 127.0.0.1 "$SPLICED_PORT" --bytes "$n" --hold-ms 3000 \
		--timeout 30 >"$out" 2>&1 3>&- &
	pid=$!
	record_pid "$pid" tunnel
	_tunnel_listed() {
		j=$(ctl_json show connections)
		[[ $(pyj 'len([c for c in d if c["state"] == "tunnel"])' <<<"$j") -eq 1 ]]
	}
	wait_until 10 _tunnel_listed || fail "no tunnel in: $j"
	assert_equal "p ws 127.0.0.1:$ORIGIN_PORT" "$(pyj '" ".join(d[0][k] for k in ("pool", "server", "upstream"))' <<<"$j")"
	if kernel_path_on; then
		assert_equal kernel "$(pyj 'd[0]["path"]' <<<"$j")" "path of a tunnel"
		# the echo is done once the client holds: every byte both ways, by the kernel
		_all_counted() {
			j=$(ctl_json show connections)
			[[ $(pyj 'd[0]["bytes"]["kernel_up"] + d[0]["bytes"]["user_up"]' <<<"$j") -ge $n &&
				$(pyj 'd[0]["bytes"]["kernel_down"] + d[0]["bytes"]["user_down"]' <<<"$j") -ge $n ]]
		}
		wait_until 10 _all_counted || fail "bytes of the tunnel: $j"
		(($(pyj 'd[0]["bytes"]["kernel_up"]' <<<"$j") > 0)) || fail "nothing up by the kernel: $j"
		(($(pyj 'd[0]["cookie"]' <<<"$j") > 0)) || fail "no socket cookie: $j"
	else
		[[ $(pyj 'd[0]["path"]' <<<"$j") != kernel ]] || fail "kernel path with --no-splice"
		assert_equal 0 "$(pyj 'd[0]["bytes"]["kernel_up"] + d[0]["bytes"]["kernel_down"]' <<<"$j")"
	fi
	wait "$pid" || fail "tunnel client: $(cat "$out")"
	grep -q '^result=ok' "$out" || fail "$(cat "$out")"
}

# ---- hostile or broken control clients ----

@test "ops: unknown commands, garbage, over-long lines and too many clients get ERR; the daemon keeps serving" {
	ops_setup
	local a
	a=$(raw_ctl 'b"frobnicate\n"')
	assert_equal "ERR unknown command 'frobnicate' (try 'help')" "$a"
	a=$(raw_ctl 'b"show\n"')
	[[ $a == "ERR usage: show"* ]] || fail "bare show: $a"
	a=$(raw_ctl 'b"show nothing\n"')
	[[ $a == ERR* ]] || fail "show nothing: $a"
	a=$(raw_ctl 'b"\x00\x01\xfe\xff garbage\n"')
	[[ $a == ERR* ]] || fail "binary garbage: $a"
	a=$(raw_ctl 'bytes(range(1, 256)) * 8 + b"\n"')
	[[ $a == ERR* ]] || fail "all byte values: $a"
	a=$(raw_ctl 'b"\n"')
	[[ $a == ERR* ]] || fail "empty line: $a"
	a=$(raw_ctl 'b"x" * 100000')
	assert_equal "ERR request line too long (at most 4095 bytes)" "$a"
	a=$(raw_ctl 'b" ".join([b"show"] * 40) + b"\n"')
	[[ $a == ERR* ]] || fail "40 words: $a"
	# several requests on one connection: one answer each, in order
	a=$(raw_ctl 'b"help\nbogus\njson show stats\n"')
	assert_equal "OK ERR OK " "$(grep -E '^(OK|ERR)' <<<"$a" | cut -c1-3 | tr -d ' ' | tr '\n' ' ')" "answers in order"
	# a last request without its newline still counts
	[[ $(raw_ctl 'b"show info"' | tail -1) == OK ]] || fail "request without newline"

	# more clients than the daemon serves at once: the extra ones are told so
	"$PYTHON" - "$CTL_SOCK" <<'PY'
import socket, sys
socks = []
for i in range(24):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])  # blocking: waits for room in the backlog
    s.settimeout(10)
    socks.append(s)
told = 0
for s in socks[16:]:
    if s.recv(100).startswith(b"ERR too many control clients"):
        told += 1
assert told == 8, told
for s in socks:
    s.close()
PY
	# still serving: the control socket and HTTP
	ctl show info
	[[ $status -eq 0 ]] || fail "show info after the abuse: $output"
	[[ $(http_code "$(url /api/ok)") == 200 ]] || fail "HTTP after the abuse"
	kill -0 "$SPLICED_PID" || fail "daemon died"
}

@test "ops: splicectl usage errors exit 2, an unreachable socket exits 3, -j stays valid JSON" {
	run "$SPLICECTL" -h
	[[ $status -eq 0 && $output == *"usage: splicectl"* ]] || fail "-h: $status"
	for args in "" "show" "show everything" "server set p" "server set p a weight" \
		"server set p a weight x" "server set p a sleep" "reload now" "frob" "log" \
		"log rotate" "show config now"; do
		# shellcheck disable=SC2086 # word splitting intended
		run "$SPLICECTL" -s /nonexistent $args
		[[ $status -eq 2 ]] || fail "'$args': status $status"
	done
	run "$SPLICECTL" -s "$BATS_TEST_TMPDIR/none.sock" show info
	[[ $status -eq 3 ]] || fail "no socket: status $status"
	assert_contains "$output" "cannot connect to $BATS_TEST_TMPDIR/none.sock"
	"$SPLICECTL" -j -s "$BATS_TEST_TMPDIR/none.sock" show info 2>/dev/null | pyj 'd["error"]' |
		grep -q 'cannot connect' || fail "-j error is not a JSON document"
}

# ---- conventions: -T, show config, -V, log reopen ----

@test "ops: spliced -T prints every default and loads again into the same text; show config prints the running one" {
	start_origin a
	start_spliced "global { control $CTL_SOCK; timeout header 7s; }
listener web { bind 127.0.0.1:@PORT@; route { host a.test; path /x/; pool p; } route { pool p; } }
pool p { server a 127.0.0.1:${ORIGIN_PORTS[a]} weight 2; health tcp rise 4; }"
	run "$SPLICED_BIN" -T -f "$SPLICED_CONF"
	[ "$status" -eq 0 ]
	local t="$output" line
	echo "$t"
	# what the file sets, and the defaults it does not
	for line in "timeout header 7s;" "timeout idle 1m;" "workers auto;" "max_header_size 16k;" \
		"splice_min_body off;" "access_log $ACCESS_LOG format text;" "# user: not set" \
		"server a 127.0.0.1:${ORIGIN_PORTS[a]} weight 2;" "balance round_robin;" \
		"health tcp interval 2s timeout 1s rise 4 fall 3;" "retries 2;" \
		"eject consecutive_failures 5 base 10s max 5m;" "keepalive_timeout 30s;" \
		"host a.test;" "path /x/;"; do
		grep -qxF "    $line" <<<"$t" || grep -qxF "        $line" <<<"$t" || fail "-T lacks '$line'"
	done
	# every keyword has a printer (a row without one says so)
	assert_not_contains "$t" "not printed"
	# a valid file that prints the same again
	tail -n +2 <<<"$t" >"$BATS_TEST_TMPDIR/t.conf"
	run "$SPLICED_BIN" -T -f "$BATS_TEST_TMPDIR/t.conf"
	[ "$status" -eq 0 ]
	diff <(tail -n +2 <<<"$t") <(tail -n +2 <<<"$output")
	# the running configuration: the same text; JSON carries it whole
	ctl show config
	[ "$status" -eq 0 ]
	diff <(tail -n +2 <<<"$t") <(sed 1d <<<"$output")
	assert_equal "$(tail -n +2 <<<"$t")" "$(ctl_json show config | pyj 'd["text"].rstrip("\n")')"
	# after a reload it shows the new one
	sed -i 's/timeout header 7s;/timeout header 9s;/' "$SPLICED_CONF"
	kill -HUP "$SPLICED_PID"
	wait_until 10 grep -q 'reloaded: generation 2' "$SPLICED_ERR"
	ctl show config
	grep -qxF "    timeout header 9s;" <<<"$output"
	assert_equal 2 "$(ctl_json show config | pyj 'd["generation"]')"
	# an invalid file: the messages, exit 1, nothing printed
	echo "frob;" >>"$SPLICED_CONF"
	run "$SPLICED_BIN" -T -f "$SPLICED_CONF"
	[ "$status" -eq 1 ]
	assert_contains "$output" "unknown top-level section 'frob'"
	assert_not_contains "$output" "global {"
}

@test "ops: spliced -V: version, build, kernel and each probed feature on a line of its own" {
	run "$SPLICED_BIN" -V
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 7 ]
	[[ ${lines[0]} =~ ^spliced\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	[[ ${lines[1]} =~ ^build:\ cc\ .*,\ flags\ .*\ libbpf\ [0-9.]+,\ OpenSSL\ .*,\ libcurl\ [0-9.]+$ ]]
	[[ ${lines[2]} == "kernel: Linux $(uname -r) $(uname -m)" ]]
	local f
	for f in 3:sockhash 4:"ktls tx" 5:"ktls rx" 6:btf; do
		[[ ${lines[${f%%:*}]} =~ ^${f#*:}:\ (yes|no|unknown)( \(.*\))?$ ]] || fail "line ${f%%:*}"
	done
	# as root the bpf() probes can tell
	[[ $EUID -ne 0 ]] || [[ ${lines[3]} != "sockhash: unknown"* ]]
}

@test "ops: SIGUSR1 and splicectl log reopen write to a new file after a logrotate-like rename" {
	start_origin a
	start_spliced "global { control $CTL_SOCK; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	"${CURL[@]}" -o /dev/null "$(url /one)"
	wait_until 5 grep -q 'GET /one ' "$ACCESS_LOG"
	# logrotate: rename, create the new file, then signal
	mv "$ACCESS_LOG" "$ACCESS_LOG.1"
	install -m 0640 /dev/null "$ACCESS_LOG"
	kill -USR1 "$SPLICED_PID"
	wait_until 5 grep -q 'SIGUSR1: reopening the access log' "$SPLICED_ERR"
	"${CURL[@]}" -o /dev/null "$(url /two)"
	wait_until 5 grep -q 'GET /two ' "$ACCESS_LOG" || fail "/two not in the new file"
	if grep -q 'GET /two ' "$ACCESS_LOG.1"; then fail "/two went to the renamed file"; fi
	# without `create`: the daemon makes the file; and through the control socket
	mv "$ACCESS_LOG" "$ACCESS_LOG.2"
	ctl log reopen
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	"${CURL[@]}" -o /dev/null "$(url /three)"
	wait_until 5 grep -q 'GET /three ' "$ACCESS_LOG" || fail "/three not in the new file"
	assert_equal 1 "$(grep -c 'GET /one ' "$ACCESS_LOG.1")"
	assert_equal 1 "$(grep -c 'GET /two ' "$ACCESS_LOG.2")"
	assert_equal "$ACCESS_LOG" "$(ctl_json log reopen | pyj 'd["reopened"]')"
	# a file that cannot be opened: ERR, exit 1, the old file stays in use
	mv "$ACCESS_LOG" "$ACCESS_LOG.3"
	mkdir "$ACCESS_LOG"
	ctl log reopen
	[ "$status" -eq 1 ]
	assert_contains "$output" "cannot open access log $ACCESS_LOG: Is a directory"
	"${CURL[@]}" -o /dev/null "$(url /four)"
	wait_until 5 grep -q 'GET /four ' "$ACCESS_LOG.3" || fail "the old file is no longer written"
	kill -0 "$SPLICED_PID"
}

# ---- reload through the socket ----

@test "ops: splicectl reload: a broken file exits 1 with FILE:LINE errors, a valid one switches routing" {
	git -C "$E2E_ROOT" log --oneline | grep -q '^[0-9a-f]* reload:' ||
		skip "daemon_reload is not in this tree yet"
	start_origin a
	start_origin b
	local conf_a conf_b
	conf_a="global { control $CTL_SOCK; }
listener web { bind 127.0.0.1:@PORT@; route { pool a; } }
pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool b { server s 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	start_spliced "$conf_a"
	[[ $(backend_of "$(url /x)") == a ]] || fail "before"
	local good=$SPLICED_CONF.good j
	cp "$SPLICED_CONF" "$good"
	# broken: an unknown pool on line 2 and an unknown keyword on line 4
	{
		sed -n 1p "$good"
		echo "listener web { bind 127.0.0.1:$SPLICED_PORT; route { pool nosuch; } }"
		echo "pool a { server s 127.0.0.1:${ORIGIN_PORTS[a]}; }"
		echo "pool b { server s 127.0.0.1:${ORIGIN_PORTS[b]}; frobnicate 1; }"
	} >"$SPLICED_CONF"
	ctl reload
	[[ $status -eq 1 ]] || fail "broken reload: status $status"
	assert_contains "$output" "$SPLICED_CONF:2: route refers to unknown pool 'nosuch'"
	assert_contains "$output" "$SPLICED_CONF:4: unknown pool setting 'frobnicate'"
	assert_contains "$output" "reload failed"
	j=$(ctl_json reload || true)
	assert_equal failed "$(pyj 'd["result"]' <<<"$j")"
	(($(pyj 'len(d["errors"])' <<<"$j") >= 2)) || fail "JSON errors: $j"
	[[ $(backend_of "$(url /y)") == a ]] || fail "the old configuration no longer serves"
	assert_equal 1 "$(ctl_json show info | pyj 'd["generation"]')" "generation after failures"

	sed 's/route { pool a; }/route { pool b; }/' "$good" >"$SPLICED_CONF"
	ctl reload
	[[ $status -eq 0 ]] || fail "valid reload: status $status $output"
	assert_equal "5 b" "$(backends 5 /z)" "routing after the reload"
	j=$(ctl_json show info)
	assert_equal "2 1 2" "$(pyj '" ".join(str(d[k]) for k in ("generation", "reloads", "reload_failures"))' <<<"$j")"
}

# ---- the socket file ----

@test "ops: the control socket is mode 0660; a live one is not stolen; a stale one is replaced; an unsafe directory is refused" {
	ops_setup
	assert_equal 660 "$(stat -c %a "$CTL_SOCK")" "socket mode"
	local conf2=$BATS_TEST_TMPDIR/second.conf p2 out=$BATS_TEST_TMPDIR/second.err
	p2=$(free_port)
	printf 'global { control %s; pin_path %s-2; access_log off; }\nlistener w { bind 127.0.0.1:%s; route { pool p; } }\npool p { server a 127.0.0.1:%s; }\n' \
		"$CTL_SOCK" "$SPLICED_PIN" "$p2" "${ORIGIN_PORTS[a]}" >"$conf2"
	echo "$SPLICED_PIN-2" >>"$BATS_TEST_TMPDIR/.pins"
	run timeout 10 "$SPLICED_BIN" -d -f "$conf2"
	[[ $status -ne 0 ]] || fail "a second daemon took the live control socket"
	assert_contains "$output" "another process is serving it"
	ctl show info
	[[ $status -eq 0 ]] || fail "the first daemon lost its socket"

	# stale: a socket file nobody listens on
	local stale=$BATS_TEST_TMPDIR/stale/control.sock
	mkdir -m 0750 "$BATS_TEST_TMPDIR/stale"
	"$PYTHON" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$stale"
	sed -i "s|$CTL_SOCK|$stale|" "$conf2"
	"$SPLICED_BIN" -d -f "$conf2" >"$out" 2>&1 3>&- &
	local pid=$!
	record_pid "$pid" spliced-2
	_serving() { grep -q 'control socket on' "$out" 2>/dev/null; }
	wait_until 5 _serving || fail "stale socket not replaced: $(cat "$out")"
	run "$SPLICECTL" -s "$stale" show info
	[[ $status -eq 0 ]] || fail "the second daemon does not answer on the replaced socket"
	stop_pid "$pid" INT
	[[ ! -e $stale ]] || fail "the socket file stays after the daemon stopped"

	# a directory others may write to
	mkdir -m 0777 "$BATS_TEST_TMPDIR/open"
	chmod 0777 "$BATS_TEST_TMPDIR/open"
	sed -i "s|$stale|$BATS_TEST_TMPDIR/open/control.sock|" "$conf2"
	run timeout 10 "$SPLICED_BIN" -d -f "$conf2"
	[[ $status -ne 0 ]] || fail "started with the socket in a world-writable directory"
	assert_contains "$output" "writable by others"
	[[ ! -e $BATS_TEST_TMPDIR/open/control.sock ]] || fail "socket created anyway"
}

# ---- metrics ----

# scrape FILE: GET /metrics into FILE; fails unless 200 and every line is well-formed
scrape() {
	"${CURL[@]}" -o "$1" "http://127.0.0.1:$SPLICED_PORT2/metrics" || return 1
	"$PYTHON" - "$1" <<'PY'
import re, sys
sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? -?[0-9.eE+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [+-]Inf$')
typed = {}
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        parts = line.split(" ", 3)
        if line.startswith("# TYPE "):
            assert parts[3] in ("counter", "gauge", "histogram"), line
            typed[parts[2]] = parts[3]
        continue
    assert sample.match(line), "line %d malformed: %r" % (n, line)
    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    assert name in typed or base in typed, "line %d: no TYPE for %s" % (n, name)
PY
}

# metric FILE 'name{labels}': its value (0 when absent)
metric() {
	"$PYTHON" - "$1" "$2" <<'PY'
import sys
want = sys.argv[2]
for line in open(sys.argv[1]):
    if line.startswith("#"):
        continue
    key, _, val = line.rstrip("\n").rpartition(" ")
    if key == want:
        v = float(val)
        print(int(v) if v == int(v) else v)
        break
else:
    print(0)
PY
}

# delta 'name{labels}': value in after.prom minus value in before.prom
delta() {
	echo $(($(metric "$BATS_TEST_TMPDIR/after.prom" "$1") - $(metric "$BATS_TEST_TMPDIR/before.prom" "$1")))
}

@test "metrics: exactly N requests move the counters by N, bytes by at least the bodies, errors by reason" {
	ops_setup
	local n=7 i before=$BATS_TEST_TMPDIR/before.prom after=$BATS_TEST_TMPDIR/after.prom
	scrape "$before" || fail "first scrape"
	for ((i = 0; i < n; i++)); do
		[[ $(http_code "$(url "/size/100000?$i")") == 200 ]] || fail "request $i"
	done
	for i in 1 2 3; do
		[[ $(http_code "$(url /nowhere$i)") == 404 ]] || fail "404 $i"
	done
	printf 'GARBAGE\r\n\r\n' >"$BATS_TEST_TMPDIR/bad.req"
	raw_send "$BATS_TEST_TMPDIR/bad.req"
	grep -q '400' "$RAW_OUT" || fail "bad request not answered 400: $(cat "$RAW_OUT")"
	# the 400 is counted when its response is out; the client closed after reading it
	_counted() { scrape "$after" && [[ $(delta 'spliced_errors_total{reason="parse_400"}') -eq 1 ]]; }
	wait_until 5 _counted || fail "parse_400 did not move by 1"

	assert_equal "$n" "$(delta "spliced_requests_total{listener=\"web\",pool=\"p\",code=\"200\"}")" "requests 200 for pool p"
	assert_equal 3 "$(delta 'spliced_requests_total{listener="web",pool="",code="404"}')" "requests 404 without pool"
	assert_equal 1 "$(delta 'spliced_requests_total{listener="web",pool="",code="400"}')" "requests 400"
	assert_equal $((n + 4)) "$(delta 'spliced_request_duration_seconds_count{listener="web"}')" "histogram count"
	assert_equal $((n + 4)) "$(delta 'spliced_request_duration_seconds_bucket{listener="web",le="+Inf"}')" "+Inf bucket"
	assert_equal 3 "$(delta 'spliced_errors_total{reason="no_route_404"}')" "no_route_404"
	assert_equal 0 "$(delta 'spliced_errors_total{reason="no_server_503"}')" "no_server_503"
	assert_equal "$n" $(($(delta 'spliced_server_requests_total{pool="p",server="a"}') + $(delta 'spliced_server_requests_total{pool="p",server="b"}'))) "server requests"
	(($(delta 'spliced_bytes_total{direction="down",path="userspace"}') >= n * 100000)) ||
		fail "bytes down moved by $(delta 'spliced_bytes_total{direction="down",path="userspace"}')"
	(($(delta 'spliced_server_bytes_total{pool="p",server="a",direction="down",path="userspace"}') >= 3 * 100000)) ||
		fail "server a bytes down"
	(($(delta 'spliced_connections_total') >= n + 4)) || fail "connections_total"
	assert_equal 1 "$(metric "$after" 'spliced_server_up{pool="p",server="a"}')" "server a up"
	assert_equal 1 "$(metric "$after" 'spliced_server_state{pool="p",server="a",state="up"}')"
	assert_equal 1 "$(metric "$after" 'spliced_server_weight{pool="p",server="b"}')"
	assert_equal 0 "$(metric "$after" 'spliced_tls_handshakes_total{result="failed"}')"
	assert_equal 0 "$(metric "$after" 'spliced_config_reloads_total{result="ok"}')"

	# admin changes show up at once
	ctl server set p b maintenance
	scrape "$after" || fail "scrape"
	assert_equal 0 "$(metric "$after" 'spliced_server_up{pool="p",server="b"}')" "b up after maintenance"
	assert_equal 1 "$(metric "$after" 'spliced_server_state{pool="p",server="b",state="maintenance"}')"

	# the endpoint itself: other paths 404, HEAD without a body, bounded request heads
	[[ $(http_code "http://127.0.0.1:$SPLICED_PORT2/other") == 404 ]] || fail "other path"
	[[ $(http_code "http://127.0.0.1:$SPLICED_PORT2/metrics" -X POST) == 405 ]] || fail "POST"
	[[ $("${CURL[@]}" -I "http://127.0.0.1:$SPLICED_PORT2/metrics" | tr -d '\r' | grep -ci '^content-type: text/plain; version=0.0.4') -eq 1 ]] ||
		fail "HEAD content type"
	[[ $(http_code "http://127.0.0.1:$SPLICED_PORT2/metrics" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)") == 431 ]] ||
		fail "oversized request head"
	scrape "$after" || fail "scrape after the abuse"
}

@test "metrics: idle and trickling connections never keep a scrape out" {
	ops_setup
	local hold=$BATS_TEST_TMPDIR/hold.out pid i
	# 100 idle connections and 100 that sent half a request, held open for 20 s
	"$PYTHON" - "$SPLICED_PORT2" >"$hold" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
held = []
for i in range(200):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if i % 2:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    held.append(s)
print("holding", len(held), flush=True)
time.sleep(20)
PY
	pid=$!
	record_pid "$pid" holder
	wait_until 10 grep -q holding "$hold" || fail "holder: $(cat "$hold")"
	for i in 1 2 3 4 5; do
		scrape "$BATS_TEST_TMPDIR/m$i" || fail "scrape $i failed with 200 connections held"
	done
	grep -q 'closing the longest idle ones' "$SPLICED_ERR" || fail "episode not logged"
}

@test "metrics: scrapes during traffic all parse and counters never go back; counters survive a reload" {
	ops_setup
	local i k prev=0 cur out=$BATS_TEST_TMPDIR/load.out pid
	# background load: 200 requests on keep-alive connections
	"$PYTHON" - "$SPLICED_PORT" >"$out" 2>&1 3>&- <<'PY' &
import http.client, sys
ok = 0
for c in range(20):
    conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=20)
    for i in range(10):
        conn.request("GET", "/size/20000?%d" % i)
        r = conn.getresponse()
        r.read()
        ok += r.status == 200
    conn.close()
print("ok", ok)
PY
	pid=$!
	record_pid "$pid" load
	for ((k = 0; k < 20; k++)); do
		scrape "$BATS_TEST_TMPDIR/s$k.prom" || fail "scrape $k during traffic"
		cur=$(metric "$BATS_TEST_TMPDIR/s$k.prom" 'spliced_requests_total{listener="web",pool="p",code="200"}')
		((cur >= prev)) || fail "requests went back from $prev to $cur"
		prev=$cur
		kill -0 "$pid" 2>/dev/null || break
	done
	wait "$pid" || fail "load: $(cat "$out")"
	assert_equal "ok 200" "$(cat "$out")"
	scrape "$BATS_TEST_TMPDIR/final.prom" || fail "final scrape"
	assert_equal 200 "$(metric "$BATS_TEST_TMPDIR/final.prom" 'spliced_requests_total{listener="web",pool="p",code="200"}')"
	assert_equal 200 "$(metric "$BATS_TEST_TMPDIR/final.prom" 'spliced_request_duration_seconds_count{listener="web"}')"

	git -C "$E2E_ROOT" log --oneline | grep -q '^[0-9a-f]* reload:' ||
		skip "daemon_reload is not in this tree yet"
	ctl reload
	[[ $status -eq 0 ]] || fail "reload: $output"
	[[ $(http_code "$(url /api/one-more)") == 200 ]] || fail "request after the reload"
	scrape "$BATS_TEST_TMPDIR/reloaded.prom" || fail "scrape after the reload"
	assert_equal 201 "$(metric "$BATS_TEST_TMPDIR/reloaded.prom" 'spliced_requests_total{listener="web",pool="p",code="200"}')" "requests after a reload"
	assert_equal 1 "$(metric "$BATS_TEST_TMPDIR/reloaded.prom" 'spliced_config_reloads_total{result="ok"}')"
	assert_equal 2 "$(metric "$BATS_TEST_TMPDIR/reloaded.prom" 'spliced_config_generation')"
}

# ---- live upgrade ----

_new_started() { (($(grep -c 'started: .*pid' "$SPLICED_ERR") > $1)); }
_pid_answers() { [[ $(ctl_json show info | pyj 'd["pid"]') == "$1" ]]; }
_scrape_requests_are() { # N: requests answered with 200, as the endpoint reports them
	scrape "$BATS_TEST_TMPDIR/up.prom" &&
		[[ $(metric "$BATS_TEST_TMPDIR/up.prom" 'spliced_requests_total{listener="web",pool="p",code="200"}') -eq $1 ]]
}

# upgrade_takeover [GLOBAL_SETTINGS]: the scenario of the two tests below
upgrade_takeover() {
	[[ -f $E2E_ROOT/userspace/upgrade.c ]] || skip "live upgrade is not in this tree yet"
	ops_setup "${1:-}"
	chmod o+r "$SPLICED_CONF"
	local before new i old=$SPLICED_PID
	_pid_answers "$old" || fail "the old process does not answer"
	for i in 1 2 3; do
		[[ $(http_code "$(url /api/before$i)") == 200 ]] || fail "request $i"
	done
	_scrape_requests_are 3 || fail "the old process did not count 3 requests"
	before=$(grep -c 'started: .*pid' "$SPLICED_ERR")
	kill -USR2 "$old"
	wait_until 20 _new_started "$before" || fail "no new process"
	new=$(sed -n 's/.*started: .*pid \([0-9]*\)$/\1/p' "$SPLICED_ERR" | tail -1)
	record_pid "$new" spliced-new
	[[ $new != "$old" ]] || fail "same pid"
	NEW_PID=$new
	# the socket path answers from the new process at once, the old one exits
	wait_until 10 _pid_answers "$new" || fail "the control socket is not the new process's"
	wait_until 20 _proc_gone "$old" || fail "the old process did not exit"
	[[ -S $CTL_SOCK ]] || fail "the old process removed the socket file"
	assert_equal 660 "$(stat -c %a "$CTL_SOCK")" "socket mode after the upgrade"
	ctl show servers
	[[ $status -eq 0 ]] || fail "show servers after the upgrade: $output"
	# the metrics endpoint is the new process's (its counters start from zero: Prometheus
	# sees a counter reset)
	wait_until 10 _scrape_requests_are 0 || fail "metrics not served by the new process"
	[[ $(http_code "$(url /api/after)") == 200 ]] || fail "HTTP after the upgrade"
	_scrape_requests_are 1 || fail "the new process did not count its request"
	grep -q 'control socket .* inherited from the previous process' "$SPLICED_ERR" ||
		fail "the control socket was not inherited"
	grep -q 'metrics endpoint .* inherited from the previous process' "$SPLICED_ERR" ||
		fail "the metrics socket was not inherited"
	ctl show info
	[[ $status -eq 0 ]] || fail "show info: $output"
}

@test "ops: a live upgrade hands the control socket and the metrics endpoint to the new process" {
	cp "$SPLICED_BIN" "$BATS_TEST_TMPDIR/spliced"
	SPLICED_BIN=$BATS_TEST_TMPDIR/spliced
	upgrade_takeover
}

@test "ops: the same as nobody: the new process cannot bind, it inherits both sockets" {
	[[ $EUID -eq 0 ]] || skip "needs root to switch users"
	cp "$SPLICED_BIN" "$BATS_TEST_TMPDIR/spliced"
	SPLICED_BIN=$BATS_TEST_TMPDIR/spliced
	files_for_nobody
	chmod o+rx "$SPLICED_BIN"
	upgrade_takeover "user nobody;"
	grep -q "^Uid:[[:space:]]*65534[[:space:]]65534" "/proc/$NEW_PID/status" ||
		fail "the new process does not run as nobody"
	assert_equal nobody "$(stat -c %U "$CTL_SOCK")" "owner of the control socket"
}

@test "ops: metrics count retries by cause, per pool" {
	local closed m=$BATS_TEST_TMPDIR/m
	closed=$(free_port)
	start_origin b502 -S 502
	start_origin good
	start_spliced "global { metrics 127.0.0.1:@PORT2@; }
listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { retry_on connect_failure 502; retries 2; fail_timeout 1ms;
	server dead 127.0.0.1:$closed; server b502 127.0.0.1:${ORIGIN_PORTS[b502]};
	server good 127.0.0.1:${ORIGIN_PORTS[good]}; }"
	run "${CURL[@]}" -H 'Connection: close' "$(url '/r[1-9]')"
	assert_equal 9 "$(grep -c '^good$' <<<"$output")"
	scrape "$m"
	grep '^spliced_pool_' "$m"
	# round robin from dead: dead -> b502 -> good, b502 -> good, good
	[ "$(metric "$m" 'spliced_pool_retries_total{pool="p",cause="connect_failure"}')" -ge 3 ]
	[ "$(metric "$m" 'spliced_pool_retries_total{pool="p",cause="502"}')" -ge 3 ]
	assert_equal 0 "$(metric "$m" 'spliced_pool_retries_total{pool="p",cause="timeout"}')"
	assert_equal 0 "$(metric "$m" 'spliced_pool_queue_length{pool="p"}')"
	assert_equal 0 "$(metric "$m" 'spliced_pool_queue_rejected_total{pool="p",reason="full"}')"
}
