#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Pipelined keep-alive client for the spliced end-to-end tests (stdlib only).

pipeline_pools.py PORT DIRECT_PORT [--count N] [--seed S]

On one connection to spliced at 127.0.0.1:PORT, a writer thread sends N requests back to back
(no waiting for responses), alternating Host a.test and b.test (two pools): uploads (POST
/upload, the origin answers "SHA256 LENGTH") and downloads (GET /size/N) with bodies from 0 B
to 6 MiB. The reader checks every response in order: status 200, X-Backend a or b as routed,
the upload digest and length, the download digest against the origin at DIRECT_PORT fetched
directly. One line per request, then "bad N"; exit status 1 when N > 0.
"""

import argparse
import hashlib
import os
import random
import socket
import sys
import threading


def fetch_direct(port, size):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /size/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % size)
    data = b""
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        data += b
    return hashlib.sha256(data.split(b"\r\n\r\n", 1)[1]).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("direct", type=int)
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    reqs = []  # (host, kind, size, payload)
    for i in range(a.count):
        host = "a.test" if i % 2 == 0 else "b.test"
        size = rng.choice([0, 7, 900, 70000, 3 << 20, 6 << 20]) if i % 3 else rng.choice([5, 100])
        if i % 4 < 2:
            reqs.append((host, "up", size, os.urandom(size)))
        else:
            reqs.append((host, "down", size, None))

    s = socket.create_connection(("127.0.0.1", a.port), timeout=60)

    def writer():
        for host, kind, size, payload in reqs:
            if kind == "up":
                s.sendall(b"POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n"
                          % (host.encode(), size) + payload)
            else:
                s.sendall(b"GET /size/%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (size, host.encode()))

    t = threading.Thread(target=writer)
    t.start()
    f = s.makefile("rb")
    bad = 0
    for i, (host, kind, size, payload) in enumerate(reqs):
        status = f.readline().split()[1]
        hdr = {}
        while True:
            line = f.readline().rstrip(b"\r\n")
            if not line:
                break
            k, v = line.split(b":", 1)
            hdr[k.strip().lower()] = v.strip()
        if b"content-length" in hdr:
            body = f.read(int(hdr[b"content-length"]))
        else:  # chunked
            body = b""
            while True:
                n = int(f.readline().split(b";")[0], 16)
                if n == 0:
                    f.readline()
                    break
                body += f.read(n)
                f.readline()
        want_backend = host[0].encode()
        if kind == "up":
            ok = body.split()[:2] == [hashlib.sha256(payload).hexdigest().encode(),
                                      str(size).encode()]
        else:
            ok = len(body) == size and hashlib.sha256(body).hexdigest() == fetch_direct(a.direct, size)
        ok = ok and status == b"200" and hdr.get(b"x-backend") == want_backend
        print(i, host, kind, size, status.decode(), hdr.get(b"x-backend", b"-").decode(),
              "ok" if ok else "BAD")
        bad += not ok
    t.join()
    print("bad", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
