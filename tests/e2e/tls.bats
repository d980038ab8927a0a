#!/usr/bin/env bats
# tls.bats - TLS termination (userspace OpenSSL crypto): protocols, SNI certificate selection,
# certificate validation at -n, bulk transfers with digests, hostile or broken clients.

load helpers

# Transfer sizes. The host runs them in full; tests/run.sh vm runs this file inside a qemu TCG
# guest, where TLS moves ~15-20 MB/s on an idle machine, with TLS_BULK_MIB=128 and
# TLS_SMALL=1 (sizes / 4) so that both passes (kTLS and --no-ktls) fit in the CI budget.
mib() { # MiB on the host -> MiB here
	if [[ -n ${TLS_SMALL:-} ]]; then echo $(($1 / 4)); else echo "$1"; fi
}

# make_cert NAME SAN: self-signed EC certificate valid for 30 days in $BATS_TEST_TMPDIR
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$BATS_TEST_TMPDIR/$1.key" -out "$BATS_TEST_TMPDIR/$1.crt" -days 30 \
		-subj "/CN=$1" -addext "subjectAltName=$2" 2>/dev/null
}

# make_expired_cert NAME: valid only on 2020-01-01
make_expired_cert() {
	local d="$BATS_TEST_TMPDIR/ca-$1"

	mkdir -p "$d"
	: >"$d/index.txt"
	echo 01 >"$d/serial"
	printf '[ca]\ndefault_ca=d\n[d]\ndir=%s\ndatabase=%s/index.txt\nnew_certs_dir=%s\nserial=%s/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' \
		"$d" "$d" "$d" "$d" >"$d/ca.cnf"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$BATS_TEST_TMPDIR/$1.key" -out "$d/req.csr" -subj "/CN=$1" 2>/dev/null
	openssl ca -batch -config "$d/ca.cnf" -selfsign -keyfile "$BATS_TEST_TMPDIR/$1.key" \
		-in "$d/req.csr" -out "$BATS_TEST_TMPDIR/$1.crt" \
		-startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1
}

# start a TLS listener with certificates a (a.test, default) and w (*.w.test)
start_tls() {
	make_cert a "DNS:a.test,DNS:www.a.test"
	make_cert w "DNS:*.w.test"
	start_origin o
	start_spliced "global { timeout header ${1:-10s}; }
listener web {
    bind 127.0.0.1:@PORT@;
    tls certificate $BATS_TEST_TMPDIR/a.crt key $BATS_TEST_TMPDIR/a.key;
    tls certificate $BATS_TEST_TMPDIR/w.crt key $BATS_TEST_TMPDIR/w.key;
    tls protocols TLSv1.2 TLSv1.3;
    route { pool p; }
}
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
}

tcurl() { # HOST PATH [curl args...]: verified request through the TLS listener
	local host=$1 path=$2 ca=a

	shift 2
	[[ $host == *.w.test ]] && ca=w
	"${CURL[@]}" --cacert "$BATS_TEST_TMPDIR/$ca.crt" \
		--resolve "$host:$SPLICED_PORT:127.0.0.1" "$@" "https://$host:$SPLICED_PORT$path"
}

# subject CN of the certificate served for an SNI name
served_cn() {
	openssl s_client -connect "127.0.0.1:$SPLICED_PORT" -servername "$1" </dev/null 2>/dev/null |
		sed -n 's/^subject=.*CN *= *\([^,]*\).*/\1/p'
}

@test "tls: TLS 1.3 and TLS 1.2 requests reach the origin with X-Forwarded-Proto https" {
	start_tls
	run tcurl a.test /echo --tlsv1.3
	assert_equal 0 "$status" "curl over TLS 1.3"
	assert_contains "$output" "X-Forwarded-Proto: https"
	run tcurl a.test / --tlsv1.2 --tls-max 1.2 -w ' %{http_code}'
	assert_equal "o
 200" "$output" "TLS 1.2 response"
	run tcurl a.test / --tlsv1.2 --tls-max 1.2 -v
	assert_contains "$output" "TLSv1.2"
}

@test "tls: the certificate is chosen by SNI; an unknown name gets the default certificate" {
	start_tls
	assert_equal "a" "$(served_cn a.test)" "exact name"
	assert_equal "w" "$(served_cn x.w.test)" "wildcard name"
	assert_equal "a" "$(served_cn wrong.test)" "unknown name: default"
	assert_equal "a" "$(served_cn y.x.w.test)" "wildcard covers one label only"
	run tcurl x.w.test / -w ' %{http_code}'
	assert_equal "o
 200" "$output" "request verified against the wildcard certificate"
	# a client that verifies the name refuses the default certificate for an unknown name
	run "${CURL[@]}" --cacert "$BATS_TEST_TMPDIR/a.crt" \
		--resolve "wrong.test:$SPLICED_PORT:127.0.0.1" "https://wrong.test:$SPLICED_PORT/"
	assert_equal 60 "$status" "curl: certificate name mismatch"
}

@test "tls: ALPN selects http/1.1" {
	start_tls
	run tcurl a.test / -v --http1.1
	assert_contains "$output" "ALPN: server accepted http/1.1"
}

@test "tls: -n refuses an expired certificate, a key that does not match and a missing file" {
	make_cert a "DNS:a.test"
	make_cert b "DNS:b.test"
	make_expired_cert old
	cat >"$BATS_TEST_TMPDIR/bad.conf" <<EOF
listener web {
    bind 127.0.0.1:1;
    tls certificate $BATS_TEST_TMPDIR/old.crt key $BATS_TEST_TMPDIR/old.key;
    tls certificate $BATS_TEST_TMPDIR/a.crt key $BATS_TEST_TMPDIR/b.key;
    tls certificate $BATS_TEST_TMPDIR/none.crt key $BATS_TEST_TMPDIR/a.key;
    route { pool p; }
}
pool p { server a 127.0.0.1:9; }
EOF
	run "$SPLICED_BIN" -n -f "$BATS_TEST_TMPDIR/bad.conf"
	assert_equal 1 "$status" "exit status"
	assert_contains "$output" "bad.conf:3: certificate $BATS_TEST_TMPDIR/old.crt has expired"
	assert_contains "$output" "bad.conf:4: key $BATS_TEST_TMPDIR/b.key does not match certificate"
	assert_contains "$output" "bad.conf:5: cannot read certificate $BATS_TEST_TMPDIR/none.crt"
	assert_not_contains "$output" "configuration OK"
}

# Bulk size: 1 GiB each way on the host. Inside the qemu guest (tests/run.sh vm)
# TLS_BULK_MIB=128: TCG emulates the CPU at ~10-20 MB/s through TLS (less on a loaded host), so
# 1 GiB each way, twice (kTLS and --no-ktls), would cost 5-10 minutes of CI on its own (measured
# once outside CI: 1 GiB down + 512 MiB up with kTLS in 157 s).
@test "tls: bulk download and upload (1 GiB each on the host) over TLS, digests equal" {
	local mib=${TLS_BULK_MIB:-1024}
	start_tls
	local direct through
	direct=$("${CURL[@]}" "$(origin_url o /size/${mib}m)" | sha_of_stream)
	through=$(tcurl a.test /size/${mib}m --max-time 300 | sha_of_stream)
	assert_equal "$direct" "$through" "download digest ($mib MiB)"
	random_file "$BATS_TEST_TMPDIR/up.bin" "$mib"
	run tcurl a.test /upload --max-time 300 -H 'Expect:' -T "$BATS_TEST_TMPDIR/up.bin"
	assert_equal "$(sha_of_file "$BATS_TEST_TMPDIR/up.bin") $((mib << 20))" "$output" \
		"upload digest and length ($mib MiB)"
	rm -f "$BATS_TEST_TMPDIR/up.bin"
	if ktls_on; then
		# curl negotiates TLS 1.3 here: OpenSSL 3.0 hands the kernel the transmit side
		assert_equal "ktls-tx ktls-tx" "$(last_tls_mode 1) $(last_tls_mode 2)" \
			"kTLS carried the transfers"
	fi
}

@test "tls: keep-alive and chunked bodies over TLS" {
	start_tls
	run tcurl a.test /a -o /dev/null -w '%{http_code} %{num_connects}\n' \
		"https://a.test:$SPLICED_PORT/b" -o /dev/null
	assert_equal "200 1
200 0" "$output" "two requests on one TLS connection"
	local direct through
	direct=$("${CURL[@]}" "$(origin_url o '/size/20m?chunked=1')" | sha_of_stream)
	through=$(tcurl a.test '/size/20m?chunked=1' | sha_of_stream)
	assert_equal "$direct" "$through" "chunked download digest"
	# a body that runs until close goes out chunked (through the buffer without kTLS TX)
	direct=$("${CURL[@]}" "$(origin_url o '/size/20m?close=1')" | sha_of_stream)
	through=$(tcurl a.test '/size/20m?close=1' -D "$BATS_TEST_TMPDIR/h" | sha_of_stream)
	assert_equal "$direct" "$through" "close-delimited download digest"
	assert_contains "$(tr -d '\r' <"$BATS_TEST_TMPDIR/h")" "Transfer-Encoding: chunked"
	run tcurl a.test '/size/20m?close=1&reset_at=2m' -o /dev/null
	[[ $status -eq 18 || $status -eq 56 ]] || fail "a cut body over TLS: curl exit $status"
}

@test "tls: garbage instead of a ClientHello is closed and never reaches the origin" {
	start_tls
	run bash -c "printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' |
		timeout 10 $PYTHON $RAWCLIENT 127.0.0.1 $SPLICED_PORT --timeout 5 --expect-close"
	assert_equal 0 "$status" "connection closed"
	assert_not_contains "$output" "HTTP/1.1 200"
	assert_equal 0 "$(file_lines "$(origin_log o)")" "requests seen by the origin"
	run tcurl a.test / -w ' %{http_code}'
	assert_equal "o
 200" "$output" "the daemon still serves"
}

@test "tls: a client that stalls mid-handshake is closed by the header timeout" {
	start_tls 1s
	run timeout 15 "$PYTHON" - "$SPLICED_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
# the first bytes of a TLS record header, then silence
s.sendall(b"\x16\x03\x01\x02")
t = time.monotonic()
try:
    d = s.recv(100)
except ConnectionResetError:
    d = b""
print("closed" if not d else "data", int((time.monotonic() - t) * 1000))
PY
	assert_equal 0 "$status"
	assert_contains "$output" "closed"
	assert_between 700 "${output#closed }" 5000 "time to close (ms)"
}

@test "tls: a client that closes without close_notify does not disturb the daemon" {
	start_tls
	run timeout 120 "$PYTHON" - "$SPLICED_PORT" "$BATS_TEST_TMPDIR/a.crt" <<'PY'
import os, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
keep = []  # the closed SSLSocket objects must not close a reused fd number when collected
for i in range(20):
    raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="a.test")
    s.sendall(b"GET /size/1m HTTP/1.1\r\nHost: a.test\r\n\r\n")
    s.recv(1000)
    # drop the TCP connection under OpenSSL: no close_notify
    os.close(s.fileno())
    keep.append(s)
print("done", flush=True)  # os._exit skips the flush a pipe needs
os._exit(0)
PY
	assert_contains "$output" "done"
	run tcurl a.test / -w ' %{http_code}'
	assert_equal "o
 200" "$output" "the daemon still serves"
	kill -0 "$SPLICED_PID"
}


# a second spliced terminating TLS in front of the origin, as the TLS upstream
start_tls_backend() {
	make_cert a "DNS:a.test"
	make_cert w "DNS:*.w.test"
	start_origin o
	start_spliced "listener b {
    bind 127.0.0.1:@PORT@;
    tls certificate $BATS_TEST_TMPDIR/a.crt key $BATS_TEST_TMPDIR/a.key;
    route { pool o; }
}
pool o { server o 127.0.0.1:$ORIGIN_PORT; }"
	BACKEND_PORT=$SPLICED_PORT
}

@test "tls: upstream TLS verified against a test CA; a failed verification is a 502 and a log line" {
	start_tls_backend
	start_spliced "listener f {
    bind 127.0.0.1:@PORT@;
    route { path /bad/; pool bad; }
    route { path /off/; pool off; }
    route { pool good; }
}
pool good { server b 127.0.0.1:$BACKEND_PORT; tls ca $BATS_TEST_TMPDIR/a.crt sni a.test; }
pool bad { server b 127.0.0.1:$BACKEND_PORT; tls ca $BATS_TEST_TMPDIR/w.crt sni a.test; }
pool off { server b 127.0.0.1:$BACKEND_PORT; tls verify off; }"
	run "${CURL[@]}" -w ' %{http_code}' "$(url /)"
	assert_equal "o
 200" "$output" "verified upstream"
	local direct through
	direct=$("${CURL[@]}" "$(origin_url o /size/$(mib 256)m)" | sha_of_stream)
	through=$("${CURL[@]}" "$(url /size/$(mib 256)m)" | sha_of_stream)
	assert_equal "$direct" "$through" "download digest through two TLS legs"
	run "${CURL[@]}" -w ' %{http_code}' "$(url /bad/x)"
	assert_equal "502 Bad Gateway
 502" "$output" "unverifiable upstream"
	assert_contains "$(cat "$SPLICED_ERR")" "upstream bad/b: TLS handshake failed"
	assert_contains "$(cat "$SPLICED_ERR")" "certificate verify failed"
	run "${CURL[@]}" -w ' %{http_code}' "$(url /off/x)"
	assert_equal "o
 200" "$output" "verify off"
}

@test "tls: -n reports an unreadable upstream CA file" {
	printf 'listener f { bind 127.0.0.1:1; route { pool p; } }\npool p {\n    server b 127.0.0.1:2;\n    tls ca %s/none.pem;\n}\n' \
		"$BATS_TEST_TMPDIR" >"$BATS_TEST_TMPDIR/ca.conf"
	run "$SPLICED_BIN" -n -f "$BATS_TEST_TMPDIR/ca.conf"
	assert_equal 1 "$status" "exit status"
	assert_contains "$output" "ca.conf:4: cannot read CA file $BATS_TEST_TMPDIR/none.pem"
}

# ---- kTLS ----

TLSCLIENT="$E2E_ROOT/.output/tests/tlsclient"

# ktls_offered: the kernel has a TLS ULP, checked apart from the daemon's own probe:
# /proc/net/tls_stat exists once the tls module is loaded (the host kernel here has none;
# tests/run.sh vm runs this file again inside a qemu guest that has it)
ktls_offered() {
	modprobe -q tls 2>/dev/null || true
	[[ -r /proc/net/tls_stat ]]
}
no_ktls() { [[ " ${SPLICED_ARGS:-} " == *" --no-ktls "* ]]; }
ktls_on() { ktls_offered && ! no_ktls; }
tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }

# tlsc ARGS...: the C test client against the TLS listener (SNI a.test), bounded in time
tlsc() {
	timeout 90 "$TLSCLIENT" 127.0.0.1 "$SPLICED_PORT" a.test "$BATS_TEST_TMPDIR/a.crt" "$@" \
		2>>"$BATS_TEST_TMPDIR/tlsclient.err"
}

# the last access log field tls=... (how the client leg's records were encrypted)
last_tls_mode() {
	wait_lines "$ACCESS_LOG" "$1" 5 || true
	sed -n "${1}p" "$ACCESS_LOG" | sed -n 's/.* tls=\([^ ]*\).*/\1/p'
}

@test "tls: the kTLS probe is logged once and the access log says who did the crypto" {
	start_tls
	run tcurl a.test / -w ' %{http_code}'
	assert_equal "o
 200" "$output" "request"
	assert_equal 1 "$(grep -c 'kTLS: ' "$SPLICED_ERR")" "one kTLS line in the log"
	if no_ktls; then
		assert_contains "$(cat "$SPLICED_ERR")" "kTLS: off (--no-ktls), TLS record crypto in userspace"
		assert_equal userspace "$(last_tls_mode 1)" "access log tls field"
	elif ktls_offered; then
		assert_contains "$(cat "$SPLICED_ERR")" "kTLS: available"
	else
		assert_contains "$(cat "$SPLICED_ERR")" "kTLS: unavailable (the kernel has no TLS ULP), TLS record crypto in userspace"
		assert_equal userspace "$(last_tls_mode 1)" "access log tls field"
	fi
}

@test "tls: kTLS carries the records where the kernel offers it (TLS 1.2 tx+rx, TLS 1.3 tx)" {
	ktls_offered || skip "this kernel has no kTLS (no TLS ULP): tests/run.sh vm runs it in a guest"
	start_tls
	local tx0 rx0 direct
	tx0=$(tls_stat TlsTxSw)
	rx0=$(tls_stat TlsRxSw)
	direct=$("${CURL[@]}" "$(origin_url o /size/20m)" | sha_of_stream)
	assert_equal "$direct" "$(tcurl a.test /size/20m --tlsv1.2 --tls-max 1.2 | sha_of_stream)" \
		"TLS 1.2 download digest"
	assert_equal "$direct" "$(tcurl a.test /size/20m --tlsv1.3 | sha_of_stream)" \
		"TLS 1.3 download digest"
	random_file "$BATS_TEST_TMPDIR/up.bin" 20
	run tcurl a.test /upload --tlsv1.2 --tls-max 1.2 -H 'Expect:' -T "$BATS_TEST_TMPDIR/up.bin"
	assert_equal "$(sha_of_file "$BATS_TEST_TMPDIR/up.bin") $((20 << 20))" "$output" \
		"TLS 1.2 upload digest"
	run tcurl a.test /upload --tlsv1.3 -H 'Expect:' -T "$BATS_TEST_TMPDIR/up.bin"
	assert_equal "$(sha_of_file "$BATS_TEST_TMPDIR/up.bin") $((20 << 20))" "$output" \
		"TLS 1.3 upload digest"
	stop_pid "$SPLICED_PID"
	if no_ktls; then
		assert_equal "userspace userspace userspace userspace" \
			"$(last_tls_mode 1) $(last_tls_mode 2) $(last_tls_mode 3) $(last_tls_mode 4)"
		assert_equal "$tx0 $rx0" "$(tls_stat TlsTxSw) $(tls_stat TlsRxSw)" \
			"tls_stat: no kernel TLS sockets with --no-ktls"
		assert_contains "$(cat "$SPLICED_ERR")" "TLS: 4 handshakes, kTLS tx on 0, rx on 0"
	else
		# OpenSSL 3.0 offloads both directions for TLS 1.2 and only transmit for TLS 1.3
		assert_equal "ktls-tx-rx ktls-tx ktls-tx-rx ktls-tx" \
			"$(last_tls_mode 1) $(last_tls_mode 2) $(last_tls_mode 3) $(last_tls_mode 4)"
		assert_equal "$((tx0 + 4)) $((rx0 + 2))" "$(tls_stat TlsTxSw) $(tls_stat TlsRxSw)" \
			"tls_stat TlsTxSw TlsRxSw: sockets the kernel encrypted / decrypted"
		assert_contains "$(cat "$SPLICED_ERR")" "TLS: 4 handshakes, kTLS tx on 4, rx on 2"
	fi
}

@test "tls: a TLS 1.3 KeyUpdate mid-upload and mid-download is followed, digests equal" {
	start_tls
	run tlsc --tls 1.3 --put $(($(mib 64) << 20)) --event keyupdate
	local sent=${lines[0]#sent=}
	assert_contains "${lines[0]}" "sent=" "client sent the whole body"
	assert_equal "status=200 bytes=$((${#sent} + 1)) body=$sent" "${lines[1]}" \
		"origin digest of the upload"
	run tlsc --tls 1.3 --get /size/$(mib 64)m --event keyupdate --again
	assert_equal "status=200 bytes=$(($(mib 64) << 20)) sha256=$("${CURL[@]}" "$(origin_url o /size/$(mib 64)m)" | sha_of_stream)" \
		"${lines[0]}" "download digest"
	assert_equal "status=200 bytes=1024" "${lines[1]% sha256=*}" "next request, same connection"
}

@test "tls: a KeyUpdate asking for ours is answered in userspace, or closed cleanly under kTLS TX" {
	start_tls
	run tlsc --tls 1.3 --put $(($(mib 64) << 20)) --event keyupdate-req
	if ktls_on; then
		# the kernel (< 6.14, and OpenSSL 3.0 in any case) cannot change the transmit key
		assert_contains "${lines[0]}" "closed after" "the connection is closed"
		assert_contains "$(cat "$SPLICED_ERR")" \
			"TLS KeyUpdate requested by the client; kTLS TX cannot rekey on this kernel: closing"
	else
		local sent=${lines[0]#sent=}
		assert_contains "${lines[0]}" "sent=" "client sent the whole body"
		assert_equal "status=200 bytes=$((${#sent} + 1)) body=$sent" "${lines[1]}" \
			"origin digest of the upload"
	fi
	run tcurl a.test / -w ' %{http_code}'
	assert_equal "o
 200" "$output" "the daemon still serves"
}

@test "tls: a close_notify in the middle of a TLS 1.2 upload ends it (kTLS RX: read as a control record)" {
	SPLICED_ARGS="${SPLICED_ARGS:-} -v" start_tls
	run tlsc --tls 1.2 --put $(($(mib 32) << 20)) --event close-notify
	assert_contains "${lines[0]}" "closed after" "the upload cannot go on"
	wait_until 5 grep -q "client closed during the request body" "$SPLICED_ERR" ||
		fail "no early end of the request body in the log"
	if ktls_on; then
		assert_contains "$(cat "$SPLICED_ERR")" "close_notify from the client (kTLS)"
	fi
	run tcurl a.test / -w ' %{http_code}'
	assert_equal "o
 200" "$output" "the daemon still serves"
}

# ---- session resumption ----

# resume SESS_IN|- SESS_OUT [s_client args]: one request with openssl s_client; prints
# "New" or "Reused" (the session line of s_client)
resume() {
	local in=$1 out=$2
	shift 2
	local args=(-connect "127.0.0.1:$SPLICED_PORT" -servername a.test
		-CAfile "$BATS_TEST_TMPDIR/a.crt" -verify_return_error -ign_eof -sess_out "$out")
	[[ $in != - ]] && args+=(-sess_in "$in")
	# the request makes the server write, so a TLS 1.3 ticket arrives before the close
	printf 'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n' |
		timeout 20 openssl s_client "${args[@]}" "$@" 2>/dev/null |
		sed -n 's/^\(New\|Reused\), .*/\1/p' | head -1
}

@test "tls: sessions resume with tickets (TLS 1.3 and 1.2); after the keys rotated away, a full handshake" {
	make_cert a "DNS:a.test"
	start_origin o
	start_spliced "listener web {
    bind 127.0.0.1:@PORT@;
    tls certificate $BATS_TEST_TMPDIR/a.crt key $BATS_TEST_TMPDIR/a.key;
    tls ticket_rotate 2s;
    route { pool p; }
}
pool p { server o 127.0.0.1:$ORIGIN_PORT; }"
	local s=$BATS_TEST_TMPDIR
	assert_equal New "$(resume - "$s/t13" -tls1_3)" "first TLS 1.3 connection"
	assert_equal Reused "$(resume "$s/t13" "$s/t13b" -tls1_3)" "TLS 1.3 resumption"
	assert_equal New "$(resume - "$s/t12" -tls1_2)" "first TLS 1.2 connection"
	assert_equal Reused "$(resume "$s/t12" "$s/t12b" -tls1_2)" "TLS 1.2 resumption"
	# a key is current for 2 s, then opens tickets for 2 s more (they are renewed), then is
	# dropped: after 4.5 s the first tickets cannot be opened whatever the phase
	sleep 4.5
	assert_equal New "$(resume "$s/t13" "$s/t13c" -tls1_3)" "TLS 1.3 ticket of a dropped key"
	assert_equal New "$(resume "$s/t12" "$s/t12c" -tls1_2)" "TLS 1.2 ticket of a dropped key"
	assert_equal Reused "$(resume "$s/t13c" "$s/t13d" -tls1_3)" "the new ticket resumes"
	wait_lines "$ACCESS_LOG" 7 5 || true
	assert_equal 7 "$(file_lines "$ACCESS_LOG")" "every connection carried its request"
}

@test "tls: health checks follow the pool's upstream TLS; a failed verification marks the server down" {
	start_tls_backend
	start_spliced "listener f {
    bind 127.0.0.1:@PORT@;
    route { path /bad/; pool bad; }
    route { pool good; }
}
pool good {
    server b 127.0.0.1:$BACKEND_PORT;
    tls ca $BATS_TEST_TMPDIR/a.crt sni a.test;
    health http /status/200 interval 100ms timeout 2s rise 1 fall 1;
}
pool bad {
    server b 127.0.0.1:$BACKEND_PORT;
    tls ca $BATS_TEST_TMPDIR/w.crt sni a.test;
    health http /status/200 interval 100ms timeout 2s rise 1 fall 1;
}"
	wait_until 10 grep -q "pool bad server b: up -> down" "$SPLICED_ERR" ||
		fail "the unverifiable server was not marked down"
	assert_contains "$(grep 'pool bad server b: up -> down' "$SPLICED_ERR")" \
		"(TLS certificate: self-signed certificate" \
		"the reason names the failed verification"
	# the verified checks reached the TLS backend, by name (SNI and Host a.test)
	wait_until 10 bash -c "[[ \$(grep -c '^[^ ]* b .*\"GET /status/200 HTTP/1.1\" host=a.test status=200' \
		'$ACCESS_LOG') -ge 3 ]]" || fail "no TLS health checks seen by the backend"
	run "${CURL[@]}" -w ' %{http_code}' "$(url /x)"
	assert_equal "o
 200" "$output" "the verified pool serves"
	assert_equal 503 "$(http_code "$(url /bad/x)")" "the pool whose server is down"
	if grep -q "pool good server b: up -> down" "$SPLICED_ERR"; then
		fail "the verified server went down"
	fi
}
