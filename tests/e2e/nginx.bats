#!/usr/bin/env bats
# nginx.bats - Debian's nginx as a second, real origin behind spliced: static files with digest
# checks, keep-alive on both sides, HEAD, ranges, errors and uploads that nginx refuses.

load helpers

# start_nginx: nginx as our own foreground process on a free loopback port, serving
# $NGINX_ROOT; sets NGINX_PORT
start_nginx() {
	command -v nginx >/dev/null || skip "nginx not installed"
	local prefix="$BATS_TEST_TMPDIR/nginx" attempt pid
	NGINX_ROOT="$prefix/www"
	mkdir -p "$prefix/logs" "$prefix/tmp" "$NGINX_ROOT"
	for attempt in 1 2 3; do
		NGINX_PORT=$(free_port)
		cat >"$prefix/nginx.conf" <<EOF
user root;
worker_processes 1;
error_log $prefix/logs/error.log warn;
events { worker_connections 256; }
http {
	access_log $prefix/logs/access.log;
	client_body_temp_path $prefix/tmp/body;
	proxy_temp_path $prefix/tmp/proxy;
	fastcgi_temp_path $prefix/tmp/fastcgi;
	uwsgi_temp_path $prefix/tmp/uwsgi;
	scgi_temp_path $prefix/tmp/scgi;
	types { text/plain txt; application/octet-stream bin; }
	default_type application/octet-stream;
	sendfile on;
	keepalive_timeout 30s;
	keepalive_requests 1000;
	client_max_body_size 1m;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $NGINX_ROOT;
		add_header X-Backend nginx always;
		add_header X-Conn-Req \$connection_requests always;
		location /chunked/ { chunked_transfer_encoding on; gzip off; }
	}
}
EOF
		nginx -c "$prefix/nginx.conf" -p "$prefix" \
			-g "daemon off; pid $prefix/nginx.pid;" >"$prefix/logs/stdout" 2>&1 3>&- &
		pid=$!
		record_pid "$pid" nginx
		if wait_until 5 _port_listening "$NGINX_PORT" && kill -0 "$pid" 2>/dev/null; then
			return 0
		fi
		stop_pid "$pid"
		cat "$prefix/logs/error.log" "$prefix/logs/stdout" >&2 2>/dev/null || true
	done
	fail "nginx did not start"
}

nginx_setup() {
	start_nginx
	start_spliced "listener web { bind 127.0.0.1:@PORT@; route { pool p; } }
pool p { server nginx 127.0.0.1:$NGINX_PORT; }"
}

@test "nginx: 64 MiB static file through spliced, digest equals the file" {
	nginx_setup
	random_file "$NGINX_ROOT/big.bin" 64
	local want got
	want=$(sha_of_file "$NGINX_ROOT/big.bin")
	got=$("${CURL[@]}" -D "$BATS_TEST_TMPDIR/h" "$(url /big.bin)" | sha_of_stream)
	assert_equal "$want" "$got" "sha256 through spliced"
	# the same through nginx directly, so a mismatch is spliced's
	assert_equal "$want" "$("${CURL[@]}" "http://127.0.0.1:$NGINX_PORT/big.bin" | sha_of_stream)"
	local h
	h=$(tr -d '\r' <"$BATS_TEST_TMPDIR/h")
	assert_contains "$h" "Content-Length: 67108864"
	assert_contains "$h" "X-Backend: nginx"
	assert_contains "$h" "Via: 1.1 spliced"
}

@test "nginx: keep-alive requests on one client connection reuse one nginx connection" {
	nginx_setup
	printf 'hello from nginx\n' >"$NGINX_ROOT/small.txt"
	random_file "$NGINX_ROOT/m.bin" 1
	run "${CURL[@]}" -w '%{num_connects} %{http_code} %header{x-conn-req} %{size_download}\n' \
		-o /dev/null "$(url /small.txt)" -o /dev/null "$(url /m.bin)" \
		-o /dev/null "$(url /small.txt)" -o /dev/null "$(url /missing)" \
		-o /dev/null "$(url /m.bin)"
	echo "$output"
	assert_equal "1 200 1 17
0 200 2 1048576
0 200 3 17
0 404 4 $(sed -n 's/.*404 .* \([0-9]*\)$/\1/p' <<<"$output" | head -1)
0 200 5 1048576" "$output"
}

@test "nginx: HEAD, conditional GET (304) and a byte range (206)" {
	nginx_setup
	random_file "$NGINX_ROOT/r.bin" 1
	run "${CURL[@]}" -I "$(url /r.bin)"
	echo "$output"
	assert_contains "$output" "HTTP/1.1 200"
	assert_contains "$output" "Content-Length: 1048576"
	local lm
	lm=$(tr -d '\r' <<<"$output" | sed -n 's/^Last-Modified: //p')
	[ -n "$lm" ]
	run "${CURL[@]}" -o /dev/null -w '%{http_code} %{size_download}' -H "If-Modified-Since: $lm" \
		"$(url /r.bin)"
	assert_equal "304 0" "$output"
	local want
	want=$(head -c 1100 "$NGINX_ROOT/r.bin" | tail -c 100 | sha256sum | cut -d' ' -f1)
	run bash -c "'${CURL[0]}' -sS --noproxy '*' -r 1000-1099 '$(url /r.bin)' | sha256sum | cut -d' ' -f1"
	assert_equal "$want" "$output" "range 1000-1099"
	run "${CURL[@]}" -o /dev/null -w '%{http_code} %{size_download}' -r 1000-1099 "$(url /r.bin)"
	assert_equal "206 100" "$output"
}

@test "nginx: errors from nginx pass through unchanged (404, 413)" {
	nginx_setup
	run "${CURL[@]}" -D "$BATS_TEST_TMPDIR/h" "$(url /nope.txt)"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/h")" "HTTP/1.1 404"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/h")" "X-Backend: nginx"
	assert_contains "$output" "nginx"
	# a 2 MiB body over client_max_body_size: nginx's 413 reaches the client
	run bash -c "head -c 2097152 /dev/zero | '${CURL[0]}' -sS --noproxy '*' --max-time 20 \
		-o /dev/null -w '%{http_code}' --data-binary @- '$(url /upload)'"
	echo "$output"
	assert_equal 413 "$output"
}

@test "nginx: many parallel keep-alive clients get intact files" {
	nginx_setup
	random_file "$NGINX_ROOT/p.bin" 4
	local want i pids=()
	want=$(sha_of_file "$NGINX_ROOT/p.bin")
	for i in 1 2 3 4 5 6; do
		"${CURL[@]}" --max-time 30 -o "$BATS_TEST_TMPDIR/p$i.1" "$(url /p.bin)" \
			-o "$BATS_TEST_TMPDIR/p$i.2" "$(url /p.bin)" -o "$BATS_TEST_TMPDIR/p$i.3" \
			"$(url /p.bin)" 3>&- &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || true; done
	for i in "$BATS_TEST_TMPDIR"/p[1-6].[1-3]; do
		assert_equal "$want" "$(sha_of_file "$i")" "$(basename "$i")"
	done
}

@test "nginx: the request nginx logs carries X-Forwarded-For and the original Host" {
	nginx_setup
	printf 'x\n' >"$NGINX_ROOT/x.txt"
	# a log format with the forwarded headers
	sed -i 's|access_log .*;|log_format fwd "$host $http_x_forwarded_for $http_via"; access_log '"$BATS_TEST_TMPDIR"'/nginx/logs/fwd.log fwd;|' \
		"$BATS_TEST_TMPDIR/nginx/nginx.conf"
	kill -HUP "$(cat "$BATS_TEST_TMPDIR/nginx/nginx.pid")"
	sleep 0.5
	run "${CURL[@]}" -H 'Host: site.example' "$(url /x.txt)"
	assert_equal x "$output"
	wait_lines "$BATS_TEST_TMPDIR/nginx/logs/fwd.log" 1
	assert_equal "site.example 127.0.0.1 1.1 spliced" "$(tail -n 1 "$BATS_TEST_TMPDIR/nginx/logs/fwd.log")"
}
