#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""raw_origin.py PORT FILE - an origin that answers every connection's first request head with
the bytes of FILE, exactly as they are, then closes: for responses no real server would send
(broken chunk framing, oversized trailers). Prints "listening on ..." when ready."""
import socket
import sys
import threading

port, path = int(sys.argv[1]), sys.argv[2]


def serve(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            got = conn.recv(65536)
            if not got:
                return
            data += got
        with open(path, "rb") as f:
            conn.sendall(f.read())
        try:
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except OSError:
            pass


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
print("listening on 127.0.0.1:%d" % port, flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
