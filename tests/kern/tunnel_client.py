#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""WebSocket-style tunnel client for the kernel data path tests (stdlib only).

Every mode upgrades with "GET PATH HTTP/1.1 ... Upgrade: websocket", requires a 101, and then
moves raw bytes of the counter pattern of pattern.py (word k = (seed << 40) | k), so a lost,
duplicated, reordered or foreign byte is reported at its exact offset. The whole run is bounded
by --timeout: a watchdog prints a "result=fail ... reason=timeout" line with the progress so far
and exits 3.

Modes (one result line on stdout, "result=ok ..." and exit 0, or "result=fail ..." and exit 1):

  --bytes N (default mode, "stream")
      stream N bytes while a second thread reads the echo concurrently, half-close, read to EOF,
      compare SHA-256 and pattern of what came back with what was sent.
      --pipeline K     send the first K data bytes in the same write as the request head,
                       i.e. before the 101 can have arrived (then wait for the 101, unless
                       --no-wait, and send the rest)
      --no-wait        never wait for the 101 before streaming
      --read-rate BPS  slow reader: pace reading of the echo to BPS bytes/s (sleeps)
      --slow-secs T    pace reading (--read-rate) only for the first T seconds, then read at
                       full speed
      --read-size S    bytes per recv (default 1 MiB)
      --send-rate BPS  pace sending to BPS bytes/s (--send-size S bytes per send, 1 MiB)
      --read-delay-ms D  start reading the echo D ms after the 101 head was read
      --rcvbuf/--sndbuf B  SO_RCVBUF / SO_SNDBUF of the client socket
      --connect        tunnel with "CONNECT HOST:PORT" (expects 200) instead of an Upgrade
      --get-first K    first K keep-alive "GET /size/N" requests on the same connection
      --hold-ms H      after sending everything, keep the tunnel open H ms before closing
      --no-half-close  close instead of shutdown(SHUT_WR) (then no EOF check)
    prints: result=ok mode=stream status=101 sent=N received=N sha256=HEX max_inflight=N
            secs=S mbps=R
    max_recv_wait_ms: the longest single wait in recv() for echo bytes (a stall shows here).
    max_inflight: the largest (bytes accepted by send) - (bytes read back) seen by the reader:
    everything queued end to end (socket queues, daemon buffers, sockmap queues).

  --rst-after K
      stream up to K bytes (reading only part of the echo), then close with SO_LINGER {1, 0}:
      the kernel sends RST. prints result=ok mode=rst sent=N received=N lport=P

  --short COUNT [--payload B] [--threads T]
      COUNT sequential (per thread) tunnels: upgrade, send B (10) bytes, read them back, close.
      prints result=ok mode=short count=N failed=0 secs=S

  --idle-wait T [--bytes B]
      upgrade, echo B bytes, then stay silent and wait up to T seconds for the proxy to close
      the tunnel: result=ok mode=idle closed_by=eof|rst after=S, or result=fail closed_by=still-open

  --many-idle N [--hold S] [--payload B]
      open N tunnels (each echoes B bytes once), print "result=ok mode=many-idle open=N" as soon
      as all are open, stay silent for S seconds, close them; then "done ... closed_by_peer=N"

  --server-first N [--seed S] [--then-send M --send-seed T]
      against tests/kern/ws_origin.py --server-first N: read N bytes of pattern S and EOF
      (the origin half-closed first), then send M bytes of pattern T, half-close, wait for EOF.
      prints result=ok mode=server-first received=N sent=M sent_sha256=HEX
"""

import argparse
import base64
import hashlib
import os
import select
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pattern import BLOCK, Pattern, Verifier  # noqa: E402

HEAD_MAX = 65536


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def upgrade_request(args):
    key = base64.b64encode(os.urandom(16)).decode()
    host = args.host or f"{args.host_arg}:{args.port}"
    if getattr(args, "connect", False):
        return f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    return (f"GET {args.path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


def make_socket(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    if args.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
    s.settimeout(args.timeout)
    s.connect((args.host_arg, args.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_head(sock):
    """Read a response head; returns (status string, bytes after the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > HEAD_MAX:
            return "oversized-head", b""
        chunk = sock.recv(65536)
        if not chunk:
            return ("closed-before-head" if not buf else "truncated-head"), b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    status = parts[1].decode(errors="replace") if len(parts) > 1 else "garbage"
    return status, rest


def get_requests(sock, args):
    """--get-first K: K plain keep-alive requests (Content-Length bodies) before the upgrade."""
    host = args.host or f"{args.host_arg}:{args.port}"
    for i in range(args.get_first):
        sock.sendall(f"GET /size/{1000 + i} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                return f"get {i}: closed"
            buf += d
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin1").split("\r\n")
        if lines[0].split(" ")[1] != "200":
            return f"get {i}: {lines[0]}"
        cl = [int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:")]
        if not cl:
            return f"get {i}: no Content-Length"
        while len(body) < cl[0]:
            d = sock.recv(65536)
            if not d:
                return f"get {i}: body cut at {len(body)}"
            body += d
        if len(body) != cl[0]:
            return f"get {i}: {len(body) - cl[0]} bytes beyond the body"
    return None


def send_counted(sock, data, counter, attr):
    """send() until all of data is accepted, adding each accepted count to counter.attr."""
    mv = memoryview(data)
    off = 0
    while off < len(mv):
        n = sock.send(mv[off:])
        off += n
        setattr(counter, attr, getattr(counter, attr) + n)


class Watchdog:
    def __init__(self, seconds, describe):
        self.describe = describe
        self.t = threading.Timer(seconds, self.fire)
        self.t.daemon = True
        self.t.start()

    def fire(self):
        print(f"result=fail {self.describe()} reason=timeout", flush=True)
        os._exit(3)

    def cancel(self):
        self.t.cancel()


# ---------------------------------------------------------------- stream mode


class Stream:
    def __init__(self, args):
        self.a = args
        self.sent = 0
        self.status = "none"
        self.head_done = threading.Event()
        self.eof = False
        self.error = None
        self.max_inflight = 0
        self.max_wait = 0.0  # longest single recv() wait for echo bytes (stalls)
        self.pat = Pattern(args.seed, cache_blocks=128)
        self.ver = Verifier(self.pat, args.bytes)
        self.t0 = time.monotonic()
        self.want = "200" if args.connect else "101"

    def progress(self):
        return (f"mode=stream status={self.status} sent={self.sent} received={self.ver.pos} "
                f"eof={int(self.eof)} max_inflight={self.max_inflight} "
                f"max_recv_wait_ms={self.max_wait * 1000:.0f}")

    def reader(self, sock):
        a = self.a
        try:
            self.status, rest = read_head(sock)
        except OSError as e:
            self.status = f"recv-error:{e.__class__.__name__}"
            self.head_done.set()
            return
        self.head_done.set()
        if self.status != self.want:
            return
        try:
            if a.read_delay_ms:
                time.sleep(a.read_delay_ms / 1000.0)
            if rest:
                self.ver.feed(rest)
            start = time.monotonic()
            size = a.read_size
            while True:
                t = time.monotonic()
                data = sock.recv(size)
                t = time.monotonic() - t
                if t > self.max_wait:
                    self.max_wait = t
                if not data:
                    self.eof = True
                    break
                inflight = self.sent - self.ver.pos
                if inflight > self.max_inflight:
                    self.max_inflight = inflight
                self.ver.feed(data)
                if a.read_rate:
                    now = time.monotonic()
                    if not a.slow_secs or now - start < a.slow_secs:
                        due = start + self.ver.pos / a.read_rate
                        if due > now:
                            time.sleep(due - now)
        except OSError as e:
            self.error = f"recv:{e.__class__.__name__}:{e}"

    def run(self):
        a = self.a
        wd = Watchdog(a.timeout, self.progress)
        sock = make_socket(a)
        sock.settimeout(None)  # the watchdog bounds everything
        if a.get_first:
            err = get_requests(sock, a)
            if err:
                return self.finish(sock, wd, hashlib.sha256(), err)
        rd = threading.Thread(target=self.reader, args=(sock,), daemon=True)
        rd.start()
        sha = hashlib.sha256()
        pos = 0
        try:
            head = upgrade_request(a)
            first = self.pat.get(0, min(a.pipeline, a.bytes)) if a.pipeline else b""
            sha.update(first)
            mv = memoryview(head + first)
            off = 0
            while off < len(mv):
                off += sock.send(mv[off:])
            self.sent = len(first)
            pos = len(first)
            if not a.no_wait:
                self.head_done.wait()
                if self.status != self.want:
                    rd.join()
                    return self.finish(sock, wd, sha, f"expected {self.want}, got {self.status}")
            t_send = time.monotonic()
            while pos < a.bytes:
                n = min(BLOCK - pos % BLOCK, a.bytes - pos, a.send_size)
                chunk = self.pat.get(pos, n)
                sha.update(chunk)
                send_counted(sock, chunk, self, "sent")
                pos += n
                if a.send_rate:
                    due = t_send + pos / a.send_rate
                    now = time.monotonic()
                    if due > now:
                        time.sleep(due - now)
            if a.hold_ms:
                # keep the tunnel open (all sent, echo still being read)
                time.sleep(a.hold_ms / 1000.0)
            if a.no_half_close:
                time.sleep(0.2)
            else:
                sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = f"send:{e.__class__.__name__}:{e}"
        if a.no_half_close:
            wd.cancel()
            sock.close()
            rd.join(1)
            return self.finish(None, None, sha, None, need_eof=False)
        rd.join()
        return self.finish(sock, wd, sha, None)

    def finish(self, sock, wd, sha, reason, need_eof=True):
        if wd:
            wd.cancel()
        if sock:
            sock.close()
        secs = time.monotonic() - self.t0
        v = self.ver
        sent_sha = sha.hexdigest()
        if reason is None:
            if self.error:
                reason = self.error
            elif v.first_bad is not None:
                reason = "corrupt " + v.describe_bad()
            elif need_eof and not self.eof:
                reason = "no EOF"
            elif need_eof and v.pos != self.a.bytes:
                reason = f"short echo {v.pos}/{self.a.bytes}"
            elif need_eof and v.hexdigest() != sent_sha:
                reason = "sha256 mismatch"
        if reason:
            print(f"result=fail {self.progress()} sha256_sent={sent_sha} "
                  f"sha256_recv={v.hexdigest()} reason={reason.replace(' ', '_')}", flush=True)
            return 1
        print(f"result=ok mode=stream status={self.status} sent={self.sent} received={v.pos} "
              f"sha256={sent_sha} max_inflight={self.max_inflight} "
              f"max_recv_wait_ms={self.max_wait * 1000:.0f} secs={secs:.2f} "
              f"mbps={v.pos / secs / 1e6:.1f}", flush=True)
        return 0


# ---------------------------------------------------------------- rst mode


def rst_mode(a):
    k = a.rst_after
    pat = Pattern(a.seed)
    state = {"sent": 0, "received": 0, "status": "none"}
    wd = Watchdog(a.timeout, lambda: "mode=rst " + " ".join(f"{x}={y}" for x, y in state.items()))
    sock = make_socket(a)
    sock.sendall(upgrade_request(a))
    status, rest = read_head(sock)
    state["status"] = status
    if status != "101":
        wd.cancel()
        print(f"result=fail mode=rst status={status} reason=expected_101", flush=True)
        return 1
    state["received"] = len(rest)
    sock.setblocking(False)
    data = pat.get(0, min(k, 8 << 20)) if k <= (8 << 20) else None
    last_progress = time.monotonic()
    while state["sent"] < k and time.monotonic() - last_progress < 0.5:
        want_read = state["received"] < k // 2
        r, w, _ = select.select([sock] if want_read else [], [sock], [], 0.1)
        if w:
            pos = state["sent"]
            n = min(BLOCK - pos % BLOCK, k - pos)
            chunk = data[pos:pos + n] if data is not None else pat.get(pos, n)
            try:
                state["sent"] += sock.send(chunk)
                last_progress = time.monotonic()
            except BlockingIOError:
                pass
        if r:
            got = sock.recv(1 << 20)
            if not got:
                break
            state["received"] += len(got)
            last_progress = time.monotonic()
    lport = sock.getsockname()[1]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    wd.cancel()
    print(f"result=ok mode=rst status=101 sent={state['sent']} received={state['received']} "
          f"lport={lport}", flush=True)
    return 0


# ---------------------------------------------------------------- idle mode


def idle_mode(a):
    """Upgrade, echo --bytes (small), then send nothing and wait up to --idle-wait seconds for
    the proxy to close the tunnel."""
    pat = Pattern(a.seed)
    wd = Watchdog(a.timeout, lambda: "mode=idle")
    sock = make_socket(a)
    sock.sendall(upgrade_request(a))
    status, got = read_head(sock)
    if status != "101":
        wd.cancel()
        print(f"result=fail mode=idle status={status} reason=expected_101", flush=True)
        return 1
    data = pat.get(0, a.bytes)
    sock.sendall(data)
    while len(got) < len(data):
        d = sock.recv(1 << 20)
        if not d:
            break
        got += d
    if got != data:
        wd.cancel()
        print(f"result=fail mode=idle status=101 received={len(got)} reason=bad_echo", flush=True)
        return 1
    t0 = time.monotonic()
    sock.settimeout(a.idle_wait)
    try:
        d = sock.recv(65536)
        how = "eof" if not d else f"data:{len(d)}"
    except socket.timeout:
        how = "still-open"
    except ConnectionResetError:
        how = "rst"
    waited = time.monotonic() - t0
    wd.cancel()
    sock.close()
    res = "ok" if how in ("eof", "rst") else "fail"
    print(f"result={res} mode=idle status=101 echoed={len(got)} closed_by={how} "
          f"after={waited:.2f}", flush=True)
    return 0 if res == "ok" else 1


# ---------------------------------------------------------------- many-idle mode


def many_idle_mode(a):
    """Open --many-idle tunnels (each echoes --payload bytes once), print one line when all
    are open, keep them silent for --hold seconds, close them."""
    socks = []
    wd = Watchdog(a.timeout, lambda: f"mode=many-idle open={len(socks)}")
    for i in range(a.many_idle):
        s = make_socket(a)
        s.sendall(upgrade_request(a))
        status, got = read_head(s)
        payload = (b"%0*d" % (a.payload, i))[-a.payload:]
        s.sendall(payload)
        while status == "101" and len(got) < len(payload):
            d = s.recv(65536)
            if not d:
                break
            got += d
        if status != "101" or got != payload:
            wd.cancel()
            print(f"result=fail mode=many-idle open={len(socks)} status={status} "
                  f"reason=bad_echo", flush=True)
            return 1
        socks.append(s)
    print(f"result=ok mode=many-idle open={len(socks)}", flush=True)
    time.sleep(a.hold)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    wd.cancel()
    print(f"done mode=many-idle closed_by_peer={closed}", flush=True)
    return 0


# ---------------------------------------------------------------- short mode


def short_mode(a):
    count, nthreads = a.short, max(1, a.threads)
    lock = threading.Lock()
    st = {"done": 0, "failed": 0, "first_error": ""}
    t0 = time.monotonic()

    def one(i):
        payload = (b"%0*d" % (a.payload, i))[-a.payload:] if a.payload else b""
        s = make_socket(a)
        try:
            s.sendall(upgrade_request(a))
            status, got = read_head(s)
            if status != "101":
                return f"conn {i}: status {status}"
            s.sendall(payload)
            while len(got) < len(payload):
                more = s.recv(65536)
                if not more:
                    return f"conn {i}: EOF after {len(got)} bytes"
                got += more
            if got != payload:
                return f"conn {i}: echo {got!r} != {payload!r}"
            return None
        finally:
            s.close()

    def worker(idx):
        for i in range(idx, count, nthreads):
            try:
                err = one(i)
            except OSError as e:
                err = f"conn {i}: {e.__class__.__name__}: {e}"
            with lock:
                st["done"] += 1
                if err:
                    st["failed"] += 1
                    if not st["first_error"]:
                        st["first_error"] = err

    wd = Watchdog(a.timeout, lambda: f"mode=short count={st['done']} failed={st['failed']}")
    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wd.cancel()
    secs = time.monotonic() - t0
    res = "ok" if st["failed"] == 0 and st["done"] == count else "fail"
    line = f"result={res} mode=short count={st['done']} failed={st['failed']} secs={secs:.2f}"
    if st["first_error"]:
        line += " first_error=" + st["first_error"].replace(" ", "_")
    print(line, flush=True)
    return 0 if res == "ok" else 1


# ---------------------------------------------------------------- server-first mode


def server_first_mode(a):
    n, m = a.server_first, a.then_send
    ver = Verifier(Pattern(a.seed), n)
    state = {"phase": "head", "received": 0, "sent": 0}
    wd = Watchdog(a.timeout, lambda: "mode=server-first " +
                  " ".join(f"{x}={y}" for x, y in state.items()))
    sock = make_socket(a)
    sock.settimeout(None)
    sock.sendall(upgrade_request(a))
    status, rest = read_head(sock)
    if status != "101":
        wd.cancel()
        print(f"result=fail mode=server-first status={status} reason=expected_101", flush=True)
        return 1
    state["phase"] = "read"
    if rest:
        ver.feed(rest)
    while True:
        d = sock.recv(1 << 20)
        if not d:
            break
        ver.feed(d)
        state["received"] = ver.pos
    state["received"] = ver.pos
    if not ver.ok or ver.hexdigest() != Pattern(a.seed).sha256(n):
        wd.cancel()
        print(f"result=fail mode=server-first received={ver.pos} "
              f"reason=bad_download_{ver.describe_bad().replace(' ', '_')}", flush=True)
        return 1
    state["phase"] = "send"
    pat = Pattern(a.send_seed)
    sha = hashlib.sha256()
    for c in pat.chunks(m):
        sha.update(c)
        sock.sendall(c)
        state["sent"] += len(c)
    sock.shutdown(socket.SHUT_WR)
    state["phase"] = "wait-eof"
    extra = 0
    while True:
        d = sock.recv(65536)
        if not d:
            break
        extra += len(d)
    wd.cancel()
    sock.close()
    if extra:
        print(f"result=fail mode=server-first received={ver.pos} sent={m} "
              f"reason={extra}_bytes_after_EOF", flush=True)
        return 1
    print(f"result=ok mode=server-first status=101 received={ver.pos} sent={m} "
          f"sent_sha256={sha.hexdigest()}", flush=True)
    return 0


def size_arg(s):
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = s.strip().lower()
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("host_arg", metavar="HOST")
    ap.add_argument("port", type=int)
    ap.add_argument("--host", help="Host header (default HOST:PORT)")
    ap.add_argument("--path", default="/ws")
    ap.add_argument("--timeout", type=float, default=60.0, help="bound on the whole run (s)")
    ap.add_argument("--seed", type=int, default=os.getpid() & 0xFFFF)
    ap.add_argument("--rcvbuf", type=size_arg, default=0)
    ap.add_argument("--sndbuf", type=size_arg, default=0)
    ap.add_argument("--bytes", type=size_arg, default=1 << 20)
    ap.add_argument("--pipeline", type=size_arg, default=0)
    ap.add_argument("--no-wait", action="store_true")
    ap.add_argument("--read-rate", type=size_arg, default=0)
    ap.add_argument("--read-size", type=size_arg, default=1 << 20)
    ap.add_argument("--read-delay-ms", type=int, default=0)
    ap.add_argument("--slow-secs", type=float, default=0)
    ap.add_argument("--send-rate", type=size_arg, default=0)
    ap.add_argument("--send-size", type=size_arg, default=BLOCK)
    ap.add_argument("--idle-wait", type=float)
    ap.add_argument("--many-idle", type=int)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--no-half-close", action="store_true")
    ap.add_argument("--hold-ms", type=int, default=0)
    ap.add_argument("--connect", action="store_true")
    ap.add_argument("--get-first", type=int, default=0)
    ap.add_argument("--rst-after", type=size_arg)
    ap.add_argument("--short", type=int)
    ap.add_argument("--payload", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--server-first", type=size_arg)
    ap.add_argument("--then-send", type=size_arg, default=0)
    ap.add_argument("--send-seed", type=int, default=77)
    a = ap.parse_args()
    try:
        if a.rst_after is not None:
            return rst_mode(a)
        if a.short is not None:
            return short_mode(a)
        if a.server_first is not None:
            return server_first_mode(a)
        if a.idle_wait is not None:
            return idle_mode(a)
        if a.many_idle is not None:
            return many_idle_mode(a)
        return Stream(a).run()
    except OSError as e:
        print(f"result=fail reason={e.__class__.__name__}:{str(e).replace(' ', '_')}",
              flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
