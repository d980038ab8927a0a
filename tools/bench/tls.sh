#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tls.sh - TLS benchmarks: bulk download and upload through a TLS listener (GB/s, CPU seconds
# per GiB) and TLS handshakes per second, spliced against nginx terminating TLS in front of the
# same origin; with kTLS where the kernel offers it, and spliced --no-ktls beside it.
#
#   tools/bench/tls.sh [--quick] [--guest] [--out FILE|-]
#
#   --quick   1 repetition, smaller transfers (development)
#   --guest   sizes for a qemu TCG guest (tools/vmtest): 128 MiB down, 64 MiB up, 1 repetition
#   --out     the markdown file whose TLS section (between the TLS markers) is replaced or
#             appended (default docs/benchmarks.md; "-": print the section only)
#
# Example in the guest: tools/vmtest --kernel 6.12 --mem 1G -- tools/bench/tls.sh --guest --out -
# Every process started here is tracked by PID and stopped on exit; every client is bounded
# by timeout(1).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tools/bench/section.sh
. "$ROOT/tools/bench/section.sh"
QUICK=0 GUEST=0 OUT="$ROOT/docs/benchmarks.md"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--guest) GUEST=1 ;;
	--out)
		OUT=$2
		shift
		;;
	-h | --help)
		sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "tls.sh: unknown argument '$1'" >&2
		exit 2
		;;
	esac
	shift
done
REPS=3 DL_MIB=1024 UP_MIB=512 HS_SECS=5
[ "$QUICK" = 1 ] && REPS=1 DL_MIB=256 UP_MIB=128 HS_SECS=3
[ "$GUEST" = 1 ] && REPS=1 DL_MIB=128 UP_MIB=64 HS_SECS=5
WORKERS=2
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3

log() { printf '[tls-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
for tool in curl nginx openssl timeout; do
	command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
[ -x .output/spliced ] && [ -x .output/tests/origin ] || die "build first (make)"
# the tools/vmtest guest has no udev to load the CPU's AES-GCM drivers: without them the kernel
# (kTLS) uses generic C code while OpenSSL uses AES-NI, which is not what a booted system does
[ "$GUEST" = 1 ] && modprobe -q aesni_intel 2>/dev/null && modprobe -q ghash_clmulni_intel 2>/dev/null
GCM=$(awk '/^name/ { n = $3 } /^driver/ && n == "gcm(aes)" { print $3; exit }' /proc/crypto 2>/dev/null)

TMP=$(mktemp -d /tmp/spliced-tlsbench.XXXXXX) || die "mktemp"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.3
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	local i
	for i in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

cp .output/spliced .output/tests/origin "$TMP/"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/a.key" \
	-out "$TMP/a.crt" -days 3 -subj /CN=a.test -addext subjectAltName=DNS:a.test 2>/dev/null
head -c $((UP_MIB << 20)) /dev/zero | openssl enc -aes-128-ctr -K 00112233445566778899aabbccddeeff \
	-iv 0 -nosalt 2>/dev/null >"$TMP/up.bin"
UP_SHA=$(sha256sum "$TMP/up.bin" | cut -d' ' -f1)

P_ORIGIN=$(port) P_SP=$(port) P_SPU=$(port) P_NG=$(port)
(cd "$TMP" && exec ./origin -p "$P_ORIGIN" -n o) >"$TMP/origin.log" 2>&1 &
PIDS+=($!)
for t in sp spu; do
	p=$P_SP
	[ $t = spu ] && p=$P_SPU
	cat >"$TMP/$t.conf" <<EOF
global { pin_path /sys/fs/bpf/spliced-tlsbench-$$-$t; access_log off; workers $WORKERS; }
listener web {
    bind 127.0.0.1:$p;
    tls certificate $TMP/a.crt key $TMP/a.key;
    route { pool p; }
}
pool p { server o 127.0.0.1:$P_ORIGIN; }
EOF
done
"$TMP/spliced" -d -f "$TMP/sp.conf" >"$TMP/sp.log" 2>&1 &
PIDS+=($!)
PID_SP=$!
"$TMP/spliced" -d -f "$TMP/spu.conf" --no-ktls >"$TMP/spu.log" 2>&1 &
PIDS+=($!)
PID_SPU=$!
mkdir -p "$TMP/nginx/tmp"
cat >"$TMP/nginx.conf" <<EOF
user root;
worker_processes $WORKERS;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    upstream origin { server 127.0.0.1:$P_ORIGIN; keepalive 64; }
    server {
        listen 127.0.0.1:$P_NG ssl;
        ssl_certificate $TMP/a.crt;
        ssl_certificate_key $TMP/a.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            client_max_body_size 0;
        }
    }
}
EOF
nginx -c "$TMP/nginx.conf" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -g 'daemon off;' &
PIDS+=($!)
PID_NG=$!
for p in "$P_ORIGIN" "$P_SP" "$P_SPU" "$P_NG"; do
	wait_port "$p" || die "port $p did not open (see $TMP)"
done
KTLS=$(grep -o 'kTLS: [^,]*' "$TMP/sp.log" | head -1)
log "spliced: $KTLS"

declare -A PORT=([spliced]=$P_SP [spliced-no-ktls]=$P_SPU [nginx]=$P_NG)
declare -A PID=([spliced]=$PID_SP [spliced-no-ktls]=$PID_SPU [nginx]=$PID_NG)
TARGETS=(spliced spliced-no-ktls nginx)
HZ=$(getconf CLK_TCK)
machine_ticks() { awk '/^cpu /{ print $2 + $4 + $8 }' /proc/stat; }
proc_ticks() {
	local p sum=0
	for p in $1 $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		[ -r /proc/"$p"/stat ] || continue
		sum=$((sum + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat)))
	done
	echo "$sum"
}
declare -A R=() # "measure target metric" -> space separated values
add() { R["$1 $2 $3"]+="$4 "; }
calc() { "$PYTHON" -c "print('%.3f' % ($1))"; }

# transfer KIND TARGET [curl args]: one download or upload; records MB/s and CPU s/GiB
# (machine, proxy); KIND names the measurement (download, download_tls12, ...)
transfer() {
	local kind=$1 t=$2 url m0 m1 p0 p1 out code size secs bytes
	shift 2
	url="https://a.test:${PORT[$t]}"
	m0=$(machine_ticks)
	p0=$(proc_ticks "${PID[$t]}")
	if [ "${kind%%_*}" = download ]; then
		bytes=$((DL_MIB << 20))
		out=$(timeout 600 curl -sS --cacert "$TMP/a.crt" --resolve "a.test:${PORT[$t]}:127.0.0.1" \
			-o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$@" "$url/size/${DL_MIB}m")
	else
		bytes=$((UP_MIB << 20))
		out=$(timeout 600 curl -sS --cacert "$TMP/a.crt" --resolve "a.test:${PORT[$t]}:127.0.0.1" \
			-H 'Expect:' -T "$TMP/up.bin" -o "$TMP/up.out" \
			-w '%{http_code} %{size_upload} %{time_total}' "$@" "$url/upload")
		[ "$(cat "$TMP/up.out" 2>/dev/null)" = "$UP_SHA $bytes" ] || out="bad-digest 0 0"
	fi
	m1=$(machine_ticks)
	p1=$(proc_ticks "${PID[$t]}")
	read -r code size secs <<<"$out"
	if [ "${code:-}" != 200 ] || [ "${size:-0}" != "$bytes" ]; then
		log "$kind via $t failed: $out"
		return
	fi
	add "$kind" "$t" mbps "$(calc "$size / $secs / 1e6")"
	add "$kind" "$t" cpu "$(calc "($m1 - $m0) / $HZ / ($bytes / 2**30)")"
	add "$kind" "$t" pcpu "$(calc "($p1 - $p0) / $HZ / ($bytes / 2**30)")"
}

# handshakes TARGET PROTO: two s_time clients in parallel for HS_SECS, new connections only
handshakes() {
	local t=$1 proto=$2 i total=0 n pids=()
	for i in 1 2; do
		timeout $((HS_SECS + 20)) openssl s_time -connect "127.0.0.1:${PORT[$t]}" -new \
			-time "$HS_SECS" "-$proto" </dev/null >"$TMP/st.$i" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}" 2>/dev/null
	for i in 1 2; do
		n=$(sed -n 's/^\([0-9]*\) connections in .* real seconds.*/\1/p' "$TMP/st.$i" | head -1)
		total=$((total + ${n:-0}))
	done
	add "hs_$proto" "$t" hps "$(calc "$total / $HS_SECS")"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$REPS"); do
	for t in "${TARGETS[@]}"; do
		log "rep $rep: $t"
		transfer download "$t"
		transfer upload "$t"
		# TLS 1.2: where OpenSSL 3.0 hands the kernel both directions
		transfer download_tls12 "$t" --tlsv1.2 --tls-max 1.2
		transfer upload_tls12 "$t" --tlsv1.2 --tls-max 1.2
		handshakes "$t" tls1_3
		handshakes "$t" tls1_2
	done
done
TX=$(awk '$1 == "TlsTxSw" { print $2 }' /proc/net/tls_stat 2>/dev/null)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

median() { "$PYTHON" -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print('%.2f' % statistics.median(v) if v else 'n/a')" $1; }
ratio() { "$PYTHON" -c "
a, b = '$1', '$2'
print('%.2f×' % (float(a) / float(b)) if a not in ('n/a', '') and b not in ('n/a', '', '0.00') else 'n/a')"; }

label_of() {
	case $1 in
	download) echo "download (TLS 1.3)" ;;
	upload) echo "upload (TLS 1.3)" ;;
	download_tls12) echo "download (TLS 1.2)" ;;
	upload_tls12) echo "upload (TLS 1.2)" ;;
	hs_tls1_3) echo "handshakes TLS 1.3" ;;
	hs_tls1_2) echo "handshakes TLS 1.2" ;;
	esac
}

# the guest's section has its own markers, so both live in docs/benchmarks.md
TAG="TLS section"
[ "$GUEST" = 1 ] && TAG="TLS guest section"

section() {
	local m metric label s u n
	echo "<!-- $TAG: written by tools/bench/tls.sh; tools/bench/run.sh keeps it -->"
	echo "## TLS$([ "$GUEST" = 1 ] && echo " (qemu TCG guest, kernel $(uname -r))") — \`tools/bench/tls.sh$([ "$QUICK" = 1 ] && echo " --quick")$([ "$GUEST" = 1 ] && echo " --guest")\`"
	echo
	echo "Generated on $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $REPS repetition(s), medians."
	echo "spliced: \`$KTLS\`$([ -n "$TX" ] && echo "; /proc/net/tls_stat TlsTxSw after the run: $TX")$([ -n "$GCM" ] && echo "; kernel gcm(aes): $GCM")."
	echo "Same origin, loopback, $WORKERS workers each, ECDSA P-256 certificate, curl as client (TLS 1.3: TLS_AES_256_GCM_SHA384, TLS 1.2: ECDHE-ECDSA-AES256-GCM-SHA384)."
	echo "Download $DL_MIB MiB, upload $UP_MIB MiB; handshakes: two \`openssl s_time -new\` clients for $HS_SECS s."
	echo "Load average $LOAD0 at the start, $LOAD1 at the end ($(nproc) CPUs, shared with other work:"
	echo "differences under ~20 % are noise; spliced and --no-ktls run the same code without kTLS)."
	echo
	echo "| measurement | metric | spliced | spliced --no-ktls | nginx | spliced ÷ nginx | --no-ktls ÷ nginx | spliced ÷ --no-ktls |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	for m in download upload download_tls12 upload_tls12 hs_tls1_3 hs_tls1_2; do
		for metric in mbps cpu pcpu hps; do
			[ -n "${R["$m spliced $metric"]:-}${R["$m nginx $metric"]:-}" ] || continue
			case $metric in
			mbps) label="MB/s (higher is better)" ;;
			cpu) label="machine CPU s/GiB (lower is better)" ;;
			pcpu) label="proxy process CPU s/GiB (lower is better)" ;;
			hps) label="handshakes/s (higher is better)" ;;
			esac
			s=$(median "${R["$m spliced $metric"]:-}")
			u=$(median "${R["$m spliced-no-ktls $metric"]:-}")
			n=$(median "${R["$m nginx $metric"]:-}")
			echo "| $(label_of "$m") | $label | $s | $u | $n | $(ratio "$s" "$n") | $(ratio "$u" "$n") | $(ratio "$s" "$u") |"
		done
	done
	echo
	echo "Machine CPU: /proc/stat user+system+softirq of all CPUs over the transfer (client, origin and"
	echo "proxy together); proxy process: utime+stime of the proxy's processes. Where the kernel has"
	echo "no kTLS, spliced and spliced --no-ktls run the same code (userspace OpenSSL).$([ "$GUEST" = 1 ] && echo "
Under qemu TCG every instruction is emulated and one repetition is all the CI budget allows:
two runs of this table differed by 2-4x per cell; read it as \"kTLS works and carries the
bytes\", not as a speed ratio.")"
	echo "<!-- end of $TAG -->"
}

if [ "$OUT" = - ]; then
	section
	exit 0
fi
section >"$TMP/section.md"
write_section "$TAG" "$TMP/section.md" "$OUT"
log "wrote the TLS section of $OUT"
