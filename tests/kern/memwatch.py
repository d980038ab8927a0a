#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run a command and sample memory while it runs (stdlib + ss from iproute2).

  memwatch.py --pid DAEMON_PID --ports P1,P2 [--interval S] [--timeout S] -- COMMAND...

Every --interval seconds (default 0.05) until COMMAND exits:
  - VmRSS of DAEMON_PID (/proc/PID/status)
  - `ss -Htnm` over the TCP sockets whose local or peer port is one of PORTS: the sum of
    Recv-Q + Send-Q, and the sum of skmem r (rmem_alloc) + w (wmem_queued) + bl (backlog),
    and the largest single queue
  - "TCP: mem" pages of /proc/net/sockstat (system wide: other tests on the host add noise)
  - MemAvailable of /proc/meminfo (system wide, noisy likewise)
COMMAND's stdout and stderr pass through. Then one line (and one "memwatch-sock LOCAL>PEER
recvq_max=N sendq_max=N" line per socket seen):
  memwatch samples=N socks_max=N q_max=BYTES q_max_one=BYTES skmem_max=BYTES rss_start_kb=N
  rss_max_kb=N tcp_mem_start_kb=N tcp_mem_max_kb=N memavail_drop_max_kb=N
Exit status: COMMAND's (124 when it outlived --timeout and was killed).
"""

import argparse
import os
import re
import subprocess
import sys
import time

SKMEM = re.compile(r"skmem:\(([^)]*)\)")


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tcp_mem_kb():
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()
                    return int(parts[parts.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError):
        pass
    return 0


def memavail_kb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sockets(ports):
    """[(recvq, sendq, skmem dict)] for TCP sockets touching one of the ports."""
    flt = " or ".join(f"sport = :{p} or dport = :{p}" for p in ports)
    try:
        out = subprocess.run(["ss", "-Htnm", f"( {flt} )"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    res = []
    cur = None
    for line in out.splitlines():
        m = SKMEM.search(line)
        if m and cur is not None:
            sk = {}
            for item in m.group(1).split(","):
                k = item.rstrip("0123456789")
                try:
                    sk[k] = int(item[len(k):])
                except ValueError:
                    pass
            cur[2].update(sk)
            continue
        f = line.split()
        # State Recv-Q Send-Q Local Peer [skmem on the same line with some ss versions]
        if len(f) >= 5 and f[1].isdigit() and f[2].isdigit():
            if f[0] == "LISTEN":
                cur = None
                continue
            cur = (int(f[1]), int(f[2]), {"name": f"{f[3]}>{f[4]}"})
            res.append(cur)
            if m:  # skmem on the same line
                for item in m.group(1).split(","):
                    k = item.rstrip("0123456789")
                    if item[len(k):]:
                        cur[2][k] = int(item[len(k):])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--ports", required=True)
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    ports = [int(p) for p in a.ports.split(",") if p]
    st = dict(samples=0, socks_max=0, q_max=0, q_max_one=0, skmem_max=0,
              rss_start_kb=rss_kb(a.pid), rss_max_kb=0, tcp_mem_start_kb=tcp_mem_kb(),
              tcp_mem_max_kb=0, memavail_drop_max_kb=0)
    avail0 = memavail_kb()
    per_sock = {}
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + a.timeout
    rc = None
    while rc is None:
        socks = sockets(ports)
        q = sum(r + s for r, s, _ in socks)
        st["samples"] += 1
        st["socks_max"] = max(st["socks_max"], len(socks))
        st["q_max"] = max(st["q_max"], q)
        st["q_max_one"] = max([st["q_max_one"]] + [max(r, s) for r, s, _ in socks])
        for r, s_, d in socks:
            m = per_sock.setdefault(d["name"], [0, 0])
            m[0] = max(m[0], r)
            m[1] = max(m[1], s_)
        sk = sum(d.get("r", 0) + d.get("w", 0) + d.get("bl", 0) for _, _, d in socks)
        st["skmem_max"] = max(st["skmem_max"], sk)
        st["rss_max_kb"] = max(st["rss_max_kb"], rss_kb(a.pid))
        st["tcp_mem_max_kb"] = max(st["tcp_mem_max_kb"], tcp_mem_kb())
        st["memavail_drop_max_kb"] = max(st["memavail_drop_max_kb"], avail0 - memavail_kb())
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            rc = 124
            break
        try:
            rc = proc.wait(timeout=a.interval)
        except subprocess.TimeoutExpired:
            rc = None
    sys.stdout.flush()
    print("memwatch " + " ".join(f"{k}={v}" for k, v in st.items()), flush=True)
    for name, (r, s_) in sorted(per_sock.items()):
        print(f"memwatch-sock {name} recvq_max={r} sendq_max={s_}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
