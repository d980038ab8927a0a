# SPDX-License-Identifier: MIT
# helpers.bash - shared plumbing for the spliced end-to-end tests (BATS).
#
# Every .bats file does `load helpers`; this file defines setup() and teardown(), so a test only
# starts what it needs:
#   start_origin NAME [origin args...]   backend on an ephemeral loopback port; sets ORIGIN_PORT,
#                                        ORIGIN_PORTS[NAME], ORIGIN_PIDS[NAME]; request log in
#                                        $(origin_log NAME)
#   start_spliced CONFIG_TEXT            daemon in the foreground; "@PORT@" / "@PORT2@" in the text
#                                        become free ports (SPLICED_PORT / SPLICED_PORT2); adds a
#                                        unique pin_path and an access_log unless the text sets
#                                        them; extra daemon flags come from $SPLICED_ARGS,
#                                        extra global statements from $SPLICED_GLOBAL (e.g.
#                                        "splice_min_body 0;": every body on the kernel path)
#   free_port                            a loopback TCP port nobody uses right now
#   record_pid PID NAME                  teardown kills it (TERM, then KILL)
# Everything a test starts is killed by PID in teardown; nothing is killed by name.
#
# Binaries: the first test of a run copies .output/spliced and .output/tests/origin into
# $BATS_RUN_TMPDIR/bin so a concurrent rebuild cannot swap them mid-run. Override with
# SPLICED_BIN / ORIGIN_BIN.

E2E_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
RAWCLIENT="$E2E_ROOT/tests/origin/rawclient.py"
CURL=(curl -sS --noproxy '*' --max-time 60)
# the interpreter itself: a version-manager shim (pyenv) costs ~0.3 s per start
if [[ -z ${PYTHON:-} ]]; then
	if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3); fi
fi

declare -gA ORIGIN_PORTS=() ORIGIN_PIDS=()
ORIGIN_PORT=
SPLICED_PORT=
SPLICED_PORT2=
SPLICED_PID=
SPLICED_CONF=
SPLICED_ERR=
ACCESS_LOG=

# ---- binaries ----

e2e_bins() {
	local dir="$BATS_RUN_TMPDIR/bin" src name tmp
	if [[ ! -x $dir/spliced || ! -x $dir/origin ]]; then
		mkdir -p "$dir"
		for src in "$E2E_ROOT/.output/spliced" "$E2E_ROOT/.output/tests/origin"; do
			name=$(basename "$src")
			[[ -x $dir/$name ]] && continue
			if [[ ! -x $src ]]; then
				echo "missing $src: run 'make -C $E2E_ROOT all' first" >&2
				return 1
			fi
			tmp=$(mktemp "$dir/.$name.XXXXXX")
			cp "$src" "$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$dir/$name"
		done
	fi
	SPLICED_BIN=${SPLICED_BIN:-$dir/spliced}
	ORIGIN_BIN=${ORIGIN_BIN:-$dir/origin}
}

# ---- small utilities ----

now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# wait_until TIMEOUT_S COMMAND... : poll every 20 ms; 0 once COMMAND succeeds, 1 on timeout
wait_until() {
	local deadline
	deadline=$(($(now_ms) + $(awk -v t="$1" 'BEGIN { printf "%d", t * 1000 }')))
	shift
	while :; do
		"$@" && return 0
		(($(now_ms) < deadline)) || return 1
		sleep 0.02
	done
}

# file_lines FILE : number of lines (0 when missing)
file_lines() {
	if [[ -f $1 ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}

_lines_at_least() { [[ $(file_lines "$1") -ge $2 ]]; }

# wait_lines FILE N [TIMEOUT]: until FILE has at least N lines
wait_lines() {
	wait_until "${3:-3}" _lines_at_least "$1" "$2"
}

fail() {
	echo "FAIL: $*" >&2
	return 1
}

assert_equal() { # expected actual [what]
	if [[ "$1" != "$2" ]]; then
		printf 'FAIL: %s\n  expected: %q\n  actual:   %q\n' "${3:-value}" "$1" "$2" >&2
		return 1
	fi
}

assert_contains() { # haystack needle [what]
	if [[ "$1" != *"$2"* ]]; then
		printf 'FAIL: %s does not contain %q\n--- text ---\n%s\n------------\n' \
			"${3:-text}" "$2" "$1" >&2
		return 1
	fi
}

assert_not_contains() { # haystack needle [what]
	if [[ "$1" == *"$2"* ]]; then
		printf 'FAIL: %s contains %q\n--- text ---\n%s\n------------\n' \
			"${3:-text}" "$2" "$1" >&2
		return 1
	fi
}

assert_between() { # lo value hi [what]
	if (($2 < $1 || $2 > $3)); then
		echo "FAIL: ${4:-value} = $2, expected between $1 and $3" >&2
		return 1
	fi
}

# ---- processes ----

record_pid() { # PID NAME
	echo "$1 $2" >>"$BATS_TEST_TMPDIR/.pids"
}

_proc_gone() { # PID: gone or zombie
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ -z $st || $st == Z* ]]
}

# stop_pid PID [SIGNAL]: SIGNAL (TERM), up to 3 s, then KILL; reaps our own children
stop_pid() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -"${2:-TERM}" "$pid" 2>/dev/null || true
	if ! wait_until 3 _proc_gone "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_until 2 _proc_gone "$pid" || true
	fi
	wait "$pid" 2>/dev/null || true
}

# ---- ports ----

_port_used() {
	[[ -n $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
}

# free_port: random port in 20000-60000 outside the ephemeral range, unused (ss) and not handed
# out before in this test
free_port() {
	local elo=32768 ehi=60999 p i
	read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		((p >= elo && p <= ehi)) && continue
		grep -qx "$p" "$BATS_TEST_TMPDIR/.ports" 2>/dev/null && continue
		_port_used "$p" && continue
		echo "$p" >>"$BATS_TEST_TMPDIR/.ports"
		echo "$p"
		return 0
	done
	echo "free_port: no free port found" >&2
	return 1
}

_port_listening() {
	[[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]
}

# ---- origin ----

origin_log() { echo "$BATS_TEST_TMPDIR/origin-$1.log"; }

_origin_ready() { # out pid
	grep -q '^listening on' "$1" 2>/dev/null || ! kill -0 "$2" 2>/dev/null
}

# start_origin NAME [args]: -p 0 (ephemeral) unless args carry -p; -l request log per name
start_origin() {
	local name=$1 out err pid port
	shift
	out="$BATS_TEST_TMPDIR/origin-$name.out"
	err="$BATS_TEST_TMPDIR/origin-$name.err"
	(cd "$BATS_TEST_TMPDIR" && exec "$ORIGIN_BIN" -p 0 -n "$name" -l "$(origin_log "$name")" "$@") \
		>"$out" 2>"$err" 3>&- &
	pid=$!
	record_pid "$pid" "origin-$name"
	wait_until 5 _origin_ready "$out" "$pid" || true
	port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out" | head -1)
	if [[ -z $port ]]; then
		echo "origin $name did not start:" >&2
		cat "$err" >&2
		return 1
	fi
	ORIGIN_PORTS[$name]=$port
	ORIGIN_PIDS[$name]=$pid
	ORIGIN_PORT=$port
}

stop_origin() { # NAME
	stop_pid "${ORIGIN_PIDS[$1]}"
}

# ---- spliced ----

# _conf_with_defaults TEXT: add pin_path and access_log to the global block unless present, and
# $SPLICED_GLOBAL
_conf_with_defaults() {
	local text=$1 add=""
	if ! grep -qE '(^|[[:space:]{;])pin_path[[:space:]]' <<<"$text"; then
		add+="pin_path $SPLICED_PIN; "
	fi
	if ! grep -qE '(^|[[:space:]{;])access_log[[:space:]]' <<<"$text"; then
		add+="access_log $ACCESS_LOG; "
	fi
	add+=${SPLICED_GLOBAL:+"$SPLICED_GLOBAL "}
	if grep -qE '(^|[[:space:]])global[[:space:]]*\{' <<<"$text"; then
		awk -v add="$add" '
			!done && match($0, /global[ \t]*\{/) {
				$0 = substr($0, 1, RSTART + RLENGTH - 1) " " add substr($0, RSTART + RLENGTH)
				done = 1
			}
			{ print }' <<<"$text"
	else
		printf 'global { %s}\n%s\n' "$add" "$text"
	fi
}

_bind_ports() { # config file -> one port per bind
	grep -oE '(^|[[:space:];{])bind[[:space:]]+[^;[:space:]]+' "$1" |
		sed -E 's/.*:([0-9]+)$/\1/' | grep -E '^[0-9]+$' || true
}

_spliced_up() { # pid conf
	local p
	kill -0 "$1" 2>/dev/null || return 0 # died: stop waiting
	for p in $(_bind_ports "$2"); do
		_port_listening "$p" || return 1
	done
	return 0
}

# start_spliced CONFIG_TEXT: see the header. Retries with new ports when a bind fails.
start_spliced() {
	local text=$1 attempt body pid
	ACCESS_LOG=${ACCESS_LOG:-$BATS_TEST_TMPDIR/access.log}
	SPLICED_ERR=$BATS_TEST_TMPDIR/spliced.err
	SPLICED_CONF=$BATS_TEST_TMPDIR/spliced.conf
	for attempt in 1 2 3; do
		SPLICED_PORT=$(free_port) || return 1
		SPLICED_PORT2=$(free_port) || return 1
		SPLICED_PIN="/sys/fs/bpf/spliced-t${BASHPID}-${BATS_SUITE_TEST_NUMBER:-0}-$attempt-$RANDOM"
		echo "$SPLICED_PIN" >>"$BATS_TEST_TMPDIR/.pins"
		body=${text//@PORT@/$SPLICED_PORT}
		body=${body//@PORT2@/$SPLICED_PORT2}
		_conf_with_defaults "$body" >"$SPLICED_CONF"
		echo "--- start attempt $attempt: $SPLICED_BIN -d -f $SPLICED_CONF ${SPLICED_ARGS:-}" \
			>>"$SPLICED_ERR"
		# shellcheck disable=SC2086 # SPLICED_ARGS is a list of flags
		# in the test's directory, so a relative path in a config cannot litter the tree
		(cd "$BATS_TEST_TMPDIR" && exec "$SPLICED_BIN" -d -f "$SPLICED_CONF" ${SPLICED_ARGS:-}) \
			>>"$SPLICED_ERR" 2>&1 3>&- &
		pid=$!
		record_pid "$pid" spliced
		wait_until 5 _spliced_up "$pid" "$SPLICED_CONF" || true
		if kill -0 "$pid" 2>/dev/null && _spliced_up "$pid" "$SPLICED_CONF"; then
			SPLICED_PID=$pid
			return 0
		fi
		stop_pid "$pid"
		if ! grep -qiE 'cannot listen|address (already )?in use|unavailable' "$SPLICED_ERR"; then
			break
		fi
	done
	echo "spliced did not start; config:" >&2
	cat -n "$SPLICED_CONF" >&2
	echo "stderr:" >&2
	cat "$SPLICED_ERR" >&2
	return 1
}

# url PATH [PORT]: URL on the spliced listener
url() { echo "http://127.0.0.1:${2:-$SPLICED_PORT}$1"; }

# origin_url NAME PATH: direct URL of an origin
origin_url() { echo "http://127.0.0.1:${ORIGIN_PORTS[$1]}$2"; }

# http_code URL [curl args]: status code only
http_code() {
	local u=$1
	shift
	"${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" "$u"
}

# backend_of URL [curl args]: the X-Backend header of the response ("-" when absent)
backend_of() {
	local u=$1 h
	shift
	h=$("${CURL[@]}" -o /dev/null -D - "$@" "$u" | tr -d '\r' |
		awk -F': ' 'tolower($1) == "x-backend" { print $2; exit }')
	echo "${h:--}"
}

# files_for_nobody: what an installation gives a daemon that drops to nobody, where the test's
# temporary directories are private to root: every directory up to the test's searchable, and
# a log directory nobody owns, which ACCESS_LOG then points into
files_for_nobody() {
	local d=$BATS_TEST_TMPDIR
	while [[ $d != / ]]; do chmod o+x "$d"; d=$(dirname "$d"); done
	mkdir "$BATS_TEST_TMPDIR/logs"
	chown nobody "$BATS_TEST_TMPDIR/logs"
	ACCESS_LOG=$BATS_TEST_TMPDIR/logs/access.log
}

# kept_alive_client N: start a client in the background that sends N GETs (/ka0, /ka1, ...) on
# one keep-alive connection, waiting before the second until "go" is written to $KA_FIFO; it
# prints "STATUS X-BACKEND LOCAL_PORT BODY_LENGTH" per response into $KA_OUT. Sets KA_PID and
# returns once the first response is in.
kept_alive_client() {
	KA_FIFO=$BATS_TEST_TMPDIR/ka.go
	KA_OUT=$BATS_TEST_TMPDIR/ka.out
	mkfifo "$KA_FIFO"
	"$PYTHON" - "$SPLICED_PORT" "$KA_FIFO" "$1" >"$KA_OUT" 2>&1 <<'PY' &
import http.client, sys
port, fifo, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
for i in range(n):
    if i == 1:
        open(fifo).read()
    c.request("GET", "/ka%d" % i)
    r = c.getresponse()
    body = r.read()
    print(r.status, r.getheader("X-Backend"), c.sock.getsockname()[1], len(body), flush=True)
PY
	KA_PID=$!
	record_pid "$KA_PID" client
	wait_until 10 test -s "$KA_OUT"
}

# kept_alive_go: let the client of kept_alive_client send the rest and wait for it
kept_alive_go() {
	echo go >"$KA_FIFO"
	wait "$KA_PID"
	cat "$KA_OUT"
}

sha_of_stream() { sha256sum | cut -d' ' -f1; }
sha_of_file() { sha256sum "$1" | cut -d' ' -f1; }

# random_file PATH SIZE_MIB: pseudo-random data (AES-CTR keyed from /dev/urandom, much faster
# than reading /dev/urandom itself for large files)
random_file() {
	local key
	key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	openssl enc -aes-128-ctr -K "$key" -iv 00000000000000000000000000000000 -nosalt \
		-in /dev/zero 2>/dev/null | head -c "$(($2 << 20))" >"$1"
	[[ $(stat -c %s "$1") -eq $(($2 << 20)) ]]
}

# raw_send FILE [rawclient args]: send FILE on one connection to spliced, output to $RAW_OUT;
# sets RAW_RC (rawclient exit status)
raw_send() {
	local f=$1
	shift
	RAW_OUT="$BATS_TEST_TMPDIR/raw.out"
	RAW_RC=0
	timeout 30 "$PYTHON" "$RAWCLIENT" 127.0.0.1 "$SPLICED_PORT" --send-file "$f" "$@" \
		>"$RAW_OUT" 2>"$BATS_TEST_TMPDIR/raw.err" || RAW_RC=$?
}

# parse_responses FILE [METHOD...]: one line per HTTP response in a raw byte stream:
#   status=NNN backend=X connreq=N len=N body=b'...'
# METHODs (in request order) tell which responses answer HEAD; a last line "rest=N" reports
# bytes that are not a complete response.
parse_responses() {
	"$PYTHON" - "$@" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
methods = sys.argv[2:]
pos, i = 0, 0
while pos < len(data):
    end = data.find(b"\r\n\r\n", pos)
    if end < 0:
        break
    lines = data[pos:end].decode("latin1").split("\r\n")
    parts = lines[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        break
    hdr = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdr.setdefault(k.strip().lower(), v.strip())
    body_start = end + 4
    if 100 <= status < 200 and status != 101:
        print(f"status={status}")
        pos = body_start
        continue
    method = methods[i] if i < len(methods) else "GET"
    i += 1
    p = body_start
    body = b""
    if method == "HEAD" or status in (204, 304):
        pass
    elif "chunked" in hdr.get("transfer-encoding", "").lower():
        ok = False
        while True:
            e = data.find(b"\r\n", p)
            if e < 0:
                break
            size = int(data[p:e].split(b";")[0], 16)
            p = e + 2
            if size == 0:
                t = data.find(b"\r\n\r\n", p - 2)
                if t < 0:
                    break
                p = t + 4
                ok = True
                break
            body += data[p:p + size]
            p += size + 2
        if not ok:
            print(f"status={status} incomplete-chunked")
            pos = len(data)
            break
    elif "content-length" in hdr:
        n = int(hdr["content-length"])
        body = data[p:p + n]
        if len(body) < n:
            print(f"status={status} incomplete len={len(body)}/{n}")
            pos = len(data)
            break
        p += n
    else:
        body = data[p:]
        p = len(data)
    pos = p
    print(f"status={status} backend={hdr.get('x-backend', '-')} "
          f"connreq={hdr.get('x-conn-req', '-')} len={len(body)} body={body[:60]!r}")
if pos < len(data):
    print(f"rest={len(data) - pos}")
PY
}

# ---- setup / teardown ----

setup() {
	e2e_bins
	: >"$BATS_TEST_TMPDIR/.pids"
}

e2e_dump_logs() {
	local f
	for f in "$BATS_TEST_TMPDIR"/spliced.conf "$BATS_TEST_TMPDIR"/spliced.err \
		"$BATS_TEST_TMPDIR"/access.log "$BATS_TEST_TMPDIR"/origin-*.err \
		"$BATS_TEST_TMPDIR"/raw.err; do
		[[ -s $f ]] || continue
		echo "# ---- $(basename "$f") (last 40 lines)"
		tail -n 40 "$f" | sed 's/^/#   /'
	done
}

# e2e_sanitizer_reports: under tests/run.sh asan, SANITIZER_LOG_DIR is where the sanitized
# binaries write their reports (log_path in ASAN_OPTIONS / UBSAN_OPTIONS: one file per process,
# created only when there is something to report, also by a daemon that dropped to nobody or
# whose stderr a test captured, and by LeakSanitizer when the daemon exits). Called in teardown,
# after every process the test started has stopped: each report fails the test, is printed and
# moved aside.
e2e_sanitizer_reports() {
	local dir=${SANITIZER_LOG_DIR:-} f found=0
	[[ -n $dir && -d $dir ]] || return 0
	for f in "$dir"/*; do
		[[ -f $f ]] || continue
		found=1
		echo "# ---- sanitizer report $(basename "$f") (first 60 lines)" >&2
		head -n 60 "$f" | sed 's/^/#   /' >&2
		mkdir -p "$dir/seen"
		mv "$f" "$dir/seen/$BATS_SUITE_TEST_NUMBER-$(basename "$f")"
	done
	((found == 0))
}

teardown() {
	local pid name pin
	if [[ -z ${BATS_TEST_COMPLETED:-} ]]; then
		e2e_dump_logs >&2
	fi
	if [[ -f $BATS_TEST_TMPDIR/.pids ]]; then
		# newest first: spliced before the origins behind it; spliced gets SIGINT (stop
		# now), SIGTERM would wait for open connections to finish
		while read -r pid name; do
			[[ -z $pid ]] && continue
			if [[ $name == spliced* ]]; then stop_pid "$pid" INT; else stop_pid "$pid"; fi
		done < <(tac "$BATS_TEST_TMPDIR/.pids")
	fi
	if [[ -f $BATS_TEST_TMPDIR/.pins ]]; then
		while read -r pin; do
			[[ $pin == /sys/fs/bpf/spliced-t* && -d $pin ]] || continue
			rm -f "$pin"/spliced_*
			rmdir "$pin" 2>/dev/null || true
		done <"$BATS_TEST_TMPDIR/.pins"
	fi
	e2e_sanitizer_reports
}
