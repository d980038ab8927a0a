#!/usr/bin/env bash
# start.sh - the README's first command: install what is missing, build, start three demo
# backends and spliced with tools/demo/spliced.conf on 127.0.0.1:8080. Run again to restart;
# `tools/demo/start.sh stop` stops everything it started (by the PIDs it recorded).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUN=.output/demo
stop_all() {
	for f in "$RUN"/*.pid; do
		[ -e "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
}

if [ "${1:-}" = stop ]; then
	stop_all
	echo "demo stopped"
	exit 0
fi

tools/install-deps.sh
make --no-print-directory all
mkdir -p "$RUN"
stop_all
sleep 0.2

i=0
for name in web1 web2 api1; do
	i=$((i + 1))
	nohup .output/tests/origin -p "900$i" -n "$name" >"$RUN/$name.log" 2>&1 &
	echo $! >"$RUN/$name.pid"
done
.output/spliced -f tools/demo/spliced.conf -n
nohup .output/spliced -d -f tools/demo/spliced.conf >"$RUN/spliced.log" 2>&1 &
echo $! >"$RUN/spliced.pid"

for _ in $(seq 50); do
	if curl -s -o /dev/null http://127.0.0.1:8080/; then
		cat <<MSG
spliced is running (pid $(cat "$RUN/spliced.pid")), log: $RUN/spliced.log
  try:  curl -i http://127.0.0.1:8080/              (web pool: web1 x3, web2 x1)
        curl -i http://127.0.0.1:8080/api/hello     (api pool)
        curl -s http://127.0.0.1:8080/size/100m | sha256sum
        bpftool map dump pinned /sys/fs/bpf/spliced/spliced_servers
  stop: tools/demo/start.sh stop
MSG
		exit 0
	fi
	sleep 0.1
done
echo "spliced did not come up; see $RUN/spliced.log" >&2
tail -20 "$RUN/spliced.log" >&2
exit 1
