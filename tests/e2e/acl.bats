#!/usr/bin/env bats
# acl.bats - access lists against real sockets: a listener's allow/deny (first match wins, IPv4
# and IPv6, CIDR edges) enforced in the kernel by the listener filter (a denied SYN never
# becomes a connection: the accept counter stays still, the map entry counts it) or, with
# --no-splice, right after accept; run-time bans with splicectl and with bpftool, kept by a
# reload; reloads that change the lists; a route's allow/deny (403) and methods (405 + Allow);
# the reasons in the counters and the access log; configuration errors.
# Sources: curl --interface 127.0.0.x (any 127/8 address is local on Linux).

load helpers

eval "$(declare -f setup | sed '1s/^setup/e2e_setup/')"
setup() {
	e2e_setup
	local dir="$BATS_RUN_TMPDIR/bin" tmp
	if [[ ! -x $dir/splicectl ]]; then
		tmp=$(mktemp "$dir/.splicectl.XXXXXX")
		cp "$E2E_ROOT/.output/splicectl" "$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$dir/splicectl"
	fi
	SPLICECTL=$dir/splicectl
	CTL_SOCK=$BATS_TEST_TMPDIR/ctl.sock
	start_origin a
}

ctl() { "$SPLICECTL" -s "$CTL_SOCK" "$@"; }

# code SRC URL [curl args]: the status a client bound to SRC gets; 000 when it gets no answer
# (the kernel dropped its SYN, or the daemon closed the connection after accept)
code() {
	local src=$1 u=$2
	shift 2
	curl -s --noproxy '*' --max-time 5 --connect-timeout 1 -o /dev/null -w '%{http_code}' \
		--interface "$src" "$@" "$u" || true
}

# v6url PATH: the listener's [::1] address
v6url() { echo "http://[::1]:$SPLICED_PORT$1"; }

# stat NAME: a counter of `show stats`
stat() { ctl show stats | awk -v n="$1" '$1 == n { print $2 }'; }

# kernel: the daemon enforces the listener lists in the kernel (else after accept)
kernel() { ctl show acl | head -1 | grep -q 'in the kernel'; }

two_origins_conf() {
	cat <<EOF
global { control $CTL_SOCK; }
listener web {
	bind 127.0.0.1:@PORT@;
	bind [::1]:@PORT@;
	$1
	route r { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }
EOF
}

@test "acl: listener allow/deny, first match wins, IPv4 edges and IPv6; a reload changes them" {
	start_spliced "$(two_origins_conf 'allow 127.0.0.0/31; deny 127.0.0.0/8; deny ::1;')"
	assert_equal 200 "$(code 127.0.0.1 "$(url /)")" "127.0.0.1: inside the allowed /31"
	assert_equal 000 "$(code 127.0.0.2 "$(url /)")" "127.0.0.2: first outside the /31, in the /8"
	assert_equal 000 "$(code 127.0.0.3 "$(url /)")" "127.0.0.3: denied by the /8"
	assert_equal 000 "$(code ::1 "$(v6url /)" -g)" "::1 denied"
	ctl show acl | grep -qE '^web +allow +127\.0\.0\.0/31 +file' || fail "$(ctl show acl)"
	# the new lists take effect for new connections: ::1 and 127.0.0.3 in, 127.0.0.2 out
	sed -i 's|allow 127.0.0.0/31; deny 127.0.0.0/8; deny ::1;|deny 127.0.0.2/32;|' "$SPLICED_CONF"
	ctl reload >/dev/null
	assert_equal 200 "$(code ::1 "$(v6url /)" -g)" "::1 after the reload"
	assert_equal 200 "$(code 127.0.0.3 "$(url /)")" "127.0.0.3 after the reload"
	assert_equal 000 "$(code 127.0.0.2 "$(url /)")" "127.0.0.2 after the reload"
	run ctl show acl
	assert_not_contains "$output" "127.0.0.0/8" "old entry left after the reload"
	assert_contains "$output" "127.0.0.2/32" "new entry"
}

@test "acl: a denied source never becomes a connection (kernel drop, or refused at accept)" {
	start_spliced "$(two_origins_conf 'deny 127.0.0.2;')"
	assert_equal 200 "$(code 127.0.0.1 "$(url /)")" "allowed client"
	before=$(stat connections_total)
	for i in 1 2 3; do
		assert_equal 000 "$(code 127.0.0.2 "$(url /)")" "denied client, try $i"
	done
	assert_equal 200 "$(code 127.0.0.1 "$(url /)")" "allowed client after the flood"
	after=$(stat connections_total)
	if kernel; then
		# not one of the denied connection attempts was accepted
		assert_equal $((before + 1)) "$after" "connections_total"
		[[ $(stat errors.acl_kernel_drop) -ge 3 ]] || fail "kernel drops: $(ctl show stats)"
		assert_equal 0 "$(stat errors.acl_denied)" "userspace refusals"
		command -v bpftool >/dev/null || skip "bpftool not installed"
		dump=$(bpftool -j map dump pinned "$SPLICED_PIN/spliced_deny")
		hits=$("$PYTHON" -c 'import json, sys
for e in json.loads(sys.argv[1]):
    e = e.get("formatted", e)  # -j: the raw bytes, and the BTF view under "formatted"
    k = e["key"]
    if k["addr"][-4:] == [127, 0, 0, 2] and k["prefixlen"] == 16 + 128:
        print(e["value"]["hits"])' "$dump")
		[[ ${hits:-0} -ge 3 ]] || fail "map entry for 127.0.0.2 without hits: $dump"
	else
		assert_equal $((before + 1)) "$after" "connections_total (refused before a connection)"
		assert_equal 3 "$(stat errors.acl_denied)" "refused after accept"
		wait_lines "$ACCESS_LOG" 5
		assert_equal 3 "$(grep -c ' 127.0.0.2 .* refused=acl_deny$' "$ACCESS_LOG")" "logged refusals"
	fi
}

@test "acl: run-time bans with splicectl (and bpftool) win over the file and survive a reload" {
	start_spliced "$(two_origins_conf 'allow 127.0.0.3; deny 127.0.0.2/31; deny 127.0.0.4/30;')"
	assert_equal 200 "$(code 127.0.0.3 "$(url /)")" "allowed by the file"
	ctl acl deny 127.0.0.3/32 >/dev/null
	assert_equal 000 "$(code 127.0.0.3 "$(url /)")" "banned at run time"
	ctl show acl | grep -qE '^\* +deny +127\.0\.0\.3/32 +runtime' || fail "$(ctl show acl)"
	ctl acl allow 127.0.0.4 >/dev/null
	assert_equal 200 "$(code 127.0.0.4 "$(url /)")" "a run-time allow beats the file's deny"
	ctl reload >/dev/null
	assert_equal 000 "$(code 127.0.0.3 "$(url /)")" "the ban after a reload"
	assert_equal 200 "$(code 127.0.0.4 "$(url /)")" "the run-time allow after a reload"
	ctl acl del 127.0.0.3 >/dev/null
	ctl acl del 127.0.0.4 >/dev/null
	assert_equal 200 "$(code 127.0.0.3 "$(url /)")" "ban lifted"
	assert_equal 000 "$(code 127.0.0.4 "$(url /)")" "the file's deny again"
	run ctl acl del 127.0.0.4
	[[ $status -eq 1 && $output == *"no run-time entry"* ]] || fail "del of nothing: $output"
	run ctl acl deny 300.1.1.1
	[[ $status -eq 1 && $output == *"invalid address"* ]] || fail "bad CIDR: $output"
	kernel || return 0
	command -v bpftool >/dev/null || skip "bpftool not installed"
	# an operator's ban written straight into the map: port 0 (every listener), 127.0.0.1/32
	bpftool map update pinned "$SPLICED_PIN/spliced_deny" \
		key hex 90 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ff ff 7f 00 00 01 00 00 \
		value hex 90 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00
	assert_equal 000 "$(code 127.0.0.1 "$(url /)")" "banned with bpftool"
	ctl show acl | grep -qE '^\* +deny +127\.0\.0\.1/32 +external +[1-9]' || fail "$(ctl show acl)"
	ctl reload >/dev/null
	assert_equal 000 "$(code 127.0.0.1 "$(url /)")" "bpftool ban after a reload"
	ctl acl del 127.0.0.1 >/dev/null
	assert_equal 200 "$(code 127.0.0.1 "$(url /)")" "bpftool ban lifted with splicectl"
}

@test "acl: a route's allow/deny answers 403, its methods 405 with Allow" {
	start_spliced "global { control $CTL_SOCK; }
listener web {
	bind 127.0.0.1:@PORT@;
	route admin { path /admin; allow 127.0.0.1; deny all; pool pa; }
	route ro { path /ro; methods GET HEAD; pool pa; }
	route r { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	assert_equal 200 "$(code 127.0.0.1 "$(url /admin)")" "admin from 127.0.0.1"
	assert_equal 403 "$(code 127.0.0.2 "$(url /admin)")" "admin from 127.0.0.2"
	assert_equal 200 "$(code 127.0.0.2 "$(url /other)")" "other routes are open"
	assert_equal 200 "$(code 127.0.0.1 "$(url /ro)")" "GET"
	assert_equal 200 "$(code 127.0.0.1 "$(url /ro)" -I)" "HEAD"
	"${CURL[@]}" -o /dev/null -D "$BATS_TEST_TMPDIR/h" -X POST -d x "$(url /ro)"
	head -1 "$BATS_TEST_TMPDIR/h" | grep -q ' 405 ' || fail "$(cat "$BATS_TEST_TMPDIR/h")"
	grep -qi '^Allow: GET, HEAD' "$BATS_TEST_TMPDIR/h" || fail "no Allow: $(cat "$BATS_TEST_TMPDIR/h")"
	# the backend saw none of the refused requests
	wait_lines "$ACCESS_LOG" 6
	assert_equal 0 "$(grep -c 'POST' "$(origin_log a)")" "POST reached the backend"
	grep -q '"GET /admin HTTP/1.1" .*status=403 .*refused=acl_deny' "$ACCESS_LOG" ||
		fail "$(cat "$ACCESS_LOG")"
	grep -q '"POST /ro HTTP/1.1" .*status=405 .*refused=method' "$ACCESS_LOG" ||
		fail "$(cat "$ACCESS_LOG")"
	assert_equal 1 "$(stat errors.forbidden_403)" "403 counted"
	assert_equal 1 "$(stat errors.method_405)" "405 counted"
}

@test "acl: -n reports shadowed entries, bad addresses and lists on a shared port" {
	cat >"$BATS_TEST_TMPDIR/bad.conf" <<EOF
listener a {
	bind 127.0.0.1:18080;
	deny 10.0.0.0/8;
	allow 10.1.0.0/16;
	deny 10.0.0.300;
	route { methods get; pool p; }
}
listener b {
	bind 127.0.0.2:18080;
	deny 192.0.2.1;
	route { pool p; }
}
pool p { server s 127.0.0.1:1; }
EOF
	run "$SPLICED_BIN" -n -f "$BATS_TEST_TMPDIR/bad.conf"
	[[ $status -ne 0 ]] || fail "accepted: $output"
	assert_contains "$output" "bad.conf:4: 'allow 10.1.0.0/16' never matches: the entry at line 3"
	assert_contains "$output" "bad.conf:5: 'deny': invalid address '10.0.0.300'"
	assert_contains "$output" "bad.conf:6: 'methods': invalid method 'get'"
	assert_contains "$output" "bad.conf:9: listeners 'a' and 'b' share port 18080"
}
