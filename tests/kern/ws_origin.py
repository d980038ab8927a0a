#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Programmable WebSocket-style origin for the kernel data path tests (stdlib only).

Listens on 127.0.0.1:PORT (0: ephemeral), prints "listening on 127.0.0.1:PORT", and answers
every request head with "101 Switching Protocols" (Upgrade: websocket), one thread per
connection (a CONNECT request gets "200 Connection Established" instead). After the answer:

  default           raw echo of everything (starting with bytes that came behind the head)
                    until the client half-closes; then shutdown(SHUT_WR) and close
  --delay-101-ms D  wait D ms after the head before answering, reading nothing meanwhile, so
                    bytes the client pipelined behind its request pile up in the proxy
  --server-first N  send N bytes of the pattern (--seed), half-close FIRST, then read what the
                    client sends until EOF, then close

One line per finished connection goes to --log (append, flushed):
  conn=I mode=echo received=N sent=N
  conn=I mode=server-first sent=N received=M sha256=HEX
"""

import argparse
import hashlib
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pattern import Pattern  # noqa: E402

RESP = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"X-Backend: %s\r\n\r\n")
CONNECT_RESP = b"HTTP/1.1 200 Connection Established\r\nX-Backend: %s\r\n\r\n"


class Origin:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.n = 0
        self.logf = open(a.log, "a", buffering=1) if a.log else None

    def log(self, line):
        with self.lock:
            if self.logf:
                self.logf.write(line + "\n")
                self.logf.flush()

    def serve(self, c, idx):
        a = self.a
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
                if len(buf) > 65536:
                    return
            rest = buf.split(b"\r\n\r\n", 1)[1]
            if a.delay_101_ms:
                time.sleep(a.delay_101_ms / 1000.0)
            if buf.startswith(b"CONNECT "):
                c.sendall(CONNECT_RESP % a.name.encode())
            else:
                c.sendall(RESP % a.name.encode())
            if a.server_first is not None:
                sent = 0
                for chunk in Pattern(a.seed).chunks(a.server_first):
                    c.sendall(chunk)
                    sent += len(chunk)
                c.shutdown(socket.SHUT_WR)
                h = hashlib.sha256(rest)
                got = len(rest)
                while True:
                    d = c.recv(1 << 20)
                    if not d:
                        break
                    h.update(d)
                    got += len(d)
                self.log(f"conn={idx} mode=server-first sent={sent} received={got} "
                         f"sha256={h.hexdigest()}")
                return
            got = sent = len(rest)
            if rest:
                c.sendall(rest)
            while True:
                d = c.recv(1 << 20)
                if not d:
                    break
                got += len(d)
                c.sendall(d)
                sent += len(d)
            c.shutdown(socket.SHUT_WR)
            self.log(f"conn={idx} mode=echo received={got} sent={sent}")
        except OSError as e:
            self.log(f"conn={idx} error={e.__class__.__name__}")
        finally:
            c.close()

    def run(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.a.port))
        ls.listen(128)
        print(f"listening on 127.0.0.1:{ls.getsockname()[1]}", flush=True)
        while True:
            c, _ = ls.accept()
            self.n += 1
            threading.Thread(target=self.serve, args=(c, self.n), daemon=True).start()


def size_arg(s):
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = s.strip().lower()
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", "--port", type=int, default=0)
    ap.add_argument("-n", "--name", default="pyws")
    ap.add_argument("-l", "--log")
    ap.add_argument("--delay-101-ms", type=int, default=0)
    ap.add_argument("--server-first", type=size_arg)
    ap.add_argument("--seed", type=int, default=99)
    a = ap.parse_args()
    try:
        Origin(a).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
