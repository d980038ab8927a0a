#!/usr/bin/env bats
# rules.bats - request rules against real backends: routes chosen by method, header, query,
# source and regex conditions (and their negation), header rules both ways with variables and
# captures, path rewriting, answers without a backend (redirects, text), the Host sent
# upstream, request IDs, hidden backend headers, error pages, reloads that change the rules,
# and the route counters in the access log, `show routes` and the metrics.
# The origin's /echo answers with the request head it received: what the backend saw.

load helpers

setup() {
	e2e_bins
	: >"$BATS_TEST_TMPDIR/.pids"
	start_origin a
	start_origin b
}

# hdr NAME FILE: the value of header NAME in a curl -D file ("" when absent)
hdr() {
	tr -d '\r' <"$2" | awk -F': ' -v n="$1" 'tolower($1) == tolower(n) { print $2; exit }'
}

# get PATH [curl args]: GET through spliced; headers in $H, body in $B
get() {
	local p=$1
	shift
	H=$BATS_TEST_TMPDIR/h
	B=$BATS_TEST_TMPDIR/b
	"${CURL[@]}" -o "$B" -D "$H" "$@" "$(url "$p")"
}

@test "rules: routes by method, header, query, source and regex, negated, first match wins" {
	start_spliced "listener web {
	bind 127.0.0.1:@PORT@;
	route posts { method POST PUT; pool pb; }
	route dbg { header X-Debug; not source 127.0.0.2; pool pb; }
	route canary { header X-Env ~^canary-[0-9]+\$; pool pb; }
	route q { query variant b; pool pb; }
	route v2 { path ~^/v2/; host ~^api\\.; pool pb; }
	route rest { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool pb { server b 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	assert_equal a "$(backend_of "$(url /x)")" "default"
	assert_equal b "$(backend_of "$(url /x)" -X POST -d x)" "POST"
	assert_equal a "$(backend_of "$(url /x)" -X DELETE)" "DELETE"
	assert_equal b "$(backend_of "$(url /x)" -H 'X-Debug: 1')" "header present"
	assert_equal a "$(backend_of "$(url /x)" -H 'X-Debug: 1' --interface 127.0.0.2)" "not source"
	assert_equal b "$(backend_of "$(url /x)" -H 'X-Env: canary-7')" "header regex"
	assert_equal a "$(backend_of "$(url /x)" -H 'X-Env: canary-x')" "header regex, no match"
	assert_equal b "$(backend_of "$(url '/x?a=1&variant=b')")" "query"
	assert_equal b "$(backend_of "$(url '/x?variant=%62')")" "query, decoded"
	assert_equal a "$(backend_of "$(url '/x?variant=bb')")" "query, whole value"
	assert_equal b "$(backend_of "$(url /v2/x)" -H 'Host: api.example')" "path and host regex"
	assert_equal a "$(backend_of "$(url /v2/x)" -H 'Host: www.example')" "host regex fails"
	# on the normalized path: no encoding or dot segment gets around a regex
	assert_equal b "$(backend_of "$(url /x/../v2/y)" -H 'Host: api.example' --path-as-is)" "normalized"
	wait_lines "$ACCESS_LOG" 13
	grep -q ' route=posts' "$ACCESS_LOG" || fail "route name not logged: $(cat "$ACCESS_LOG")"
	grep -q ' route=rest' "$ACCESS_LOG" || fail "route name not logged"
}

@test "rules: request headers set, added and removed with variables and captures" {
	start_spliced "listener web {
	bind 127.0.0.1:@PORT@;
	request_header set X-Listener \$listener;
	route api {
		path /echo;
		header X-Ver ~^(v[0-9]+)\$;
		request_header set X-Api \"\$1 via \$route\";
		request_header add X-Tag one;
		request_header add X-Tag two;
		request_header del X-Secret;
		request_header set X-Client \$remote_addr:\$http_x_who;
		request_header set X-Forwarded-Proto https;
		pool pa;
	}
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	get /echo -H 'X-Ver: v3' -H 'X-Secret: hunter2' -H 'X-Who: bob' -H 'X-Api: from-client' \
		-H 'X-Forwarded-Proto: spoofed'
	cat "$B"
	local body
	body=$(tr -d '\r' <"$B")
	assert_contains "$body" "X-Listener: web"
	assert_contains "$body" "X-Api: v3 via api"
	assert_not_contains "$body" "from-client"
	assert_contains "$body" "X-Tag: one"
	assert_contains "$body" "X-Tag: two"
	assert_not_contains "$body" "hunter2"
	assert_contains "$body" "X-Client: 127.0.0.1:bob"
	# a rule on a header the proxy sets takes it over: one line, the rule's
	[[ $(grep -ci '^X-Forwarded-Proto:' <<<"$body") -eq 1 ]] || fail "X-Forwarded-Proto lines"
	assert_contains "$body" "X-Forwarded-Proto: https"
	# framing headers are not the rules' to change
	printf '%s\n' 'listener w { bind 127.0.0.1:1; route { request_header set Transfer-Encoding x; pool p; } }' 'pool p { server s 127.0.0.1:80; }' >"$BATS_TEST_TMPDIR/bad.conf"
	run "$SPLICED_BIN" -n -f "$BATS_TEST_TMPDIR/bad.conf"
	[ "$status" -eq 1 ]
	assert_contains "$output" ":1: 'request_header' cannot change header 'Transfer-Encoding'"
}

@test "rules: response headers both on backend answers and spliced's own, backend details hidden" {
	start_spliced "listener web {
	bind 127.0.0.1:@PORT@;
	response_header set X-Frame-Options DENY;
	route nohide { path /raw/; strip_prefix /raw; hide_headers off; pool pa; }
	route some { path /some/; strip_prefix /some; hide_headers X-Powered-By; pool pa; }
	route down { path /down/; response_header set X-Route \$route-\$status; pool dead; }
	route rest { response_header add X-Served-By \$server; response_header del X-Conn-Req; pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool dead { server d 127.0.0.1:$(free_port); }"
	get '/echo?leak=1'
	assert_equal "" "$(hdr Server "$H")" "Server hidden by default"
	assert_equal "" "$(hdr X-Powered-By "$H")" "X-Powered-By hidden by default"
	assert_equal DENY "$(hdr X-Frame-Options "$H")" "listener rule"
	assert_equal a "$(hdr X-Served-By "$H")" "\$server in a response rule"
	assert_equal "" "$(hdr X-Conn-Req "$H")" "del"
	get '/raw/echo?leak=1'
	assert_equal "Apache/2.4.57 (Debian)" "$(hdr Server "$H")" "hide_headers off"
	get '/some/echo?leak=1'
	assert_equal "Apache/2.4.57 (Debian)" "$(hdr Server "$H")" "a list replaces the default"
	assert_equal "" "$(hdr X-Powered-By "$H")" "listed"
	# spliced's own answer (no server listening) carries the rules too
	run "${CURL[@]}" -o /dev/null -D "$BATS_TEST_TMPDIR/h503" -w '%{http_code}' "$(url /down/x)"
	assert_equal 503 "$output" "dead pool"
	assert_equal down-503 "$(hdr X-Route "$BATS_TEST_TMPDIR/h503")" "rule on a 503"
	assert_equal DENY "$(hdr X-Frame-Options "$BATS_TEST_TMPDIR/h503")" "listener rule on a 503"
}

@test "rules: rewrite and strip_prefix change the path the backend sees, the query kept" {
	start_spliced "listener web {
	bind 127.0.0.1:@PORT@;
	route api { path /api/; strip_prefix /api; pool pa; }
	route old { path /old/; rewrite ^/old/(.*)\$ /new/\$1; pool pa; }
	route search { path /s/; rewrite ^/s/([a-z]+)\$ /search?q=\$1; pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	"${CURL[@]}" -o /dev/null "$(url '/api/users/7?full=1')"
	"${CURL[@]}" -o /dev/null "$(url '/old/a/b?x=1')"
	"${CURL[@]}" -o /dev/null "$(url '/s/cats?ignored=1')"
	"${CURL[@]}" -o /dev/null "$(url /api/)"
	wait_lines "$(origin_log a)" 4
	cat "$(origin_log a)"
	grep -qx 'GET /users/7?full=1' "$(origin_log a)" || fail "strip_prefix"
	grep -qx 'GET /new/a/b?x=1' "$(origin_log a)" || fail "rewrite keeps the query"
	grep -qx 'GET /search?q=cats' "$(origin_log a)" || fail "the replacement's query wins"
	grep -qx 'GET /' "$(origin_log a)" || fail "stripped to the root"
}

@test "rules: return answers without a backend: redirects with variables, text, error pages" {
	echo '<h1>nothing here</h1>' >"$BATS_TEST_TMPDIR/404.html"
	start_spliced "listener web {
	bind 127.0.0.1:@PORT@;
	error_page 404 $BATS_TEST_TMPDIR/404.html;
	route https { host plain.example; return 308 https://\$host\$request_uri; }
	route tea { path /teapot; return 418 \"short and stout\"; }
	route gone { path /gone/; return 410; }
	route api { path /api/; pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	run "${CURL[@]}" -o /dev/null -D "$BATS_TEST_TMPDIR/h" -w '%{http_code}' -H 'Host: plain.example' "$(url '/a/b?c=d')"
	assert_equal 308 "$output"
	assert_equal "https://plain.example/a/b?c=d" "$(hdr Location "$BATS_TEST_TMPDIR/h")" "Location"
	assert_equal "short and stout" "$("${CURL[@]}" "$(url /teapot)")" "text body"
	assert_equal 418 "$(http_code "$(url /teapot)")"
	assert_equal 410 "$(http_code "$(url /gone/x)")"
	assert_equal 404 "$(http_code "$(url /nowhere)")"
	assert_equal "<h1>nothing here</h1>" "$("${CURL[@]}" "$(url /nowhere)")" "error page"
	assert_equal "text/html; charset=utf-8" "$("${CURL[@]}" -o /dev/null -w '%{content_type}' "$(url /nowhere)")"
	[ "$(file_lines "$(origin_log a)")" -eq 0 ] || fail "a backend was asked"
	# a configured answer is no error
	printf '%s\n' 'listener w { bind 127.0.0.1:1; error_page 404 /nonexistent.html; route { pool p; } }' 'pool p { server s 127.0.0.1:80; }' >"$BATS_TEST_TMPDIR/bad.conf"
	run "$SPLICED_BIN" -n -f "$BATS_TEST_TMPDIR/bad.conf"
	[ "$status" -eq 1 ]
	assert_contains "$output" ":1: error_page: cannot read '/nonexistent.html'"
}

@test "rules: upstream_host and request IDs (kept when valid, made when not, logged, returned)" {
	start_spliced "listener web {
	bind 127.0.0.1:@PORT@;
	request_id on;
	route named { path /named/; strip_prefix /named; request_id on header X-Trace; upstream_host backend.internal:8080; pool pa; }
	route rest { pool pa; }
}
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }"
	get /echo
	local id
	id=$(hdr X-Request-ID "$H")
	[[ $id =~ ^[0-9a-f]{32}$ ]] || fail "generated ID: '$id'"
	assert_contains "$(cat "$B")" "X-Request-ID: $id"
	get /echo -H 'X-Request-ID: trace-42.a:b'
	assert_equal "trace-42.a:b" "$(hdr X-Request-ID "$H")" "a valid ID is kept"
	get /echo -H 'X-Request-ID: bad id!'
	[[ $(hdr X-Request-ID "$H") =~ ^[0-9a-f]{32}$ ]] || fail "an invalid ID is replaced"
	assert_not_contains "$(cat "$B")" "bad id!"
	get /named/echo
	[[ $(hdr X-Trace "$H") =~ ^[0-9a-f]{32}$ ]] || fail "named header"
	assert_contains "$(tr -d '\r' <"$B")" "Host: backend.internal:8080"
	wait_lines "$ACCESS_LOG" 4
	grep -q " request_id=trace-42.a:b" "$ACCESS_LOG" || fail "ID not logged: $(cat "$ACCESS_LOG")"
}

@test "rules: a reload swaps the rules; kept-alive connections take them at their next request" {
	start_spliced "global { control $BATS_TEST_TMPDIR/ctl.sock; metrics 127.0.0.1:@PORT2@; }
listener web { bind 127.0.0.1:@PORT@; route r1 { pool pa; } }
pool pa { server a 127.0.0.1:${ORIGIN_PORTS[a]}; }
pool pb { server b 127.0.0.1:${ORIGIN_PORTS[b]}; }"
	local h=$BATS_TEST_TMPDIR/routes out
	kept_alive_client 2
	assert_equal a "$(backend_of "$(url /x)")"
	sed -i 's/route r1 { pool pa; }/route r0 { method GET; not header X-Old; pool pb; } route r1 { pool pa; }/' "$SPLICED_CONF"
	kill -HUP "$SPLICED_PID"
	wait_until 5 grep -q 'reload' "$SPLICED_ERR"
	kept_alive_go
	out=$(cat "$KA_OUT")
	# both requests on one connection: a before the reload, b (the new route) after it
	[[ $(awk '{ print $3 }' <<<"$out" | sort -u | wc -l) -eq 1 ]] || fail "not one connection"
	assert_equal "a b" "$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $2 }' <<<"$out")" "backends"
	assert_equal a "$(backend_of "$(url /x)" -H 'X-Old: 1')" "negated header"
	# the counter of a route that stays goes on
	"$E2E_ROOT/.output/splicectl" -s "$BATS_TEST_TMPDIR/ctl.sock" show routes >"$h"
	cat "$h"
	awk '$1 == "web" && $2 == "r1" { found = 1; exit !($4 == 3) } END { exit !found }' "$h" ||
		fail "r1 matches across the reload"
	grep -q 'r0 .*method GET; not header x-old' "$h" || grep -qi 'r0 .*method GET; not header X-Old' "$h" ||
		fail "conditions shown"
	"${CURL[@]}" "http://127.0.0.1:$SPLICED_PORT2/metrics" |
		grep -E '^spliced_route_matches_total\{listener="web",route="r0"\} 1$' || fail "metric"
}
