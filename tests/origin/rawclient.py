#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Raw TCP client for the spliced end-to-end tests (stdlib only).

Default mode: send stdin (or --send-file) to HOST PORT as-is, optionally one byte at a time,
optionally half-close, then copy everything received to stdout (binary-safe) until the peer
closes or --timeout seconds pass.  Exit status: 0 normally; with --expect-close, 0 only if the
peer closed (FIN or RST) within the timeout, else 1.  Connect failure exits 2.

--ws-echo N: send a WebSocket-style upgrade GET, require "101", check Sec-WebSocket-Accept if
present, send N random bytes in several writes, read them back and compare.  Prints
"status=101 echo=ok bytes=N" and exits 0, or one "status=... echo=fail ..." line and exits 1.
"""

import argparse
import base64
import hashlib
import os
import socket
import sys
import threading
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def connect(host, port, timeout):
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        print(f"connect {host}:{port}: {e}", file=sys.stderr)
        sys.exit(2)


def send_payload(sock, data, delay_ms):
    if delay_ms is None:
        sock.sendall(data)
        return
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        if delay_ms > 0 and i + 1 < len(data):
            time.sleep(delay_ms / 1000.0)


def raw_mode(args):
    if args.send_file:
        with open(args.send_file, "rb") as f:
            data = f.read()
    else:
        data = sys.stdin.buffer.read()
    sock = connect(args.host_arg, args.port, args.timeout)
    out = sys.stdout.buffer
    try:
        send_payload(sock, data, args.byte_by_byte)
    except OSError as e:
        print(f"send: {e}", file=sys.stderr)
    if args.half_close:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    deadline = time.monotonic() + args.timeout
    closed = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            print("connection reset by peer", file=sys.stderr)
            closed = True
            break
        if not chunk:
            closed = True
            break
        out.write(chunk)
        out.flush()
    sock.close()
    if args.expect_close and not closed:
        print(f"peer did not close within {args.timeout}s", file=sys.stderr)
        return 1
    return 0


def ws_fail(status, why):
    print(f"status={status} echo=fail {why}")
    return 1


def ws_mode(args):
    n = args.ws_echo
    host_hdr = args.host or (f"[{args.host_arg}]:{args.port}" if ":" in args.host_arg
                             else f"{args.host_arg}:{args.port}")
    key = base64.b64encode(os.urandom(16))
    req = (f"GET {args.path} HTTP/1.1\r\nHost: {host_hdr}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
           f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
    sock = connect(args.host_arg, args.port, args.timeout)
    deadline = time.monotonic() + args.timeout
    sock.sendall(req)

    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return ws_fail("none", "timeout waiting for response head")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except OSError as e:
            return ws_fail("none", f"recv: {e}")
        if not chunk:
            return ws_fail("none", "closed before response head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = parts[1].decode(errors="replace") if len(parts) > 1 else "none"
    if status != "101":
        return ws_fail(status, "expected 101")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower()] = v.strip()
    want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    got = hdrs.get(b"sec-websocket-accept")
    if got is not None and got != want:
        return ws_fail(status, f"bad Sec-WebSocket-Accept {got!r}")

    payload = os.urandom(n)
    send_err = []

    def sender():
        try:
            # several writes of varying size so the echo path sees separate segments
            sizes = [1, 7, 100, 4096, 65536, 1 << 20]
            off, i = 0, 0
            while off < n:
                k = min(sizes[i % len(sizes)], n - off)
                sock.sendall(payload[off:off + k])
                off += k
                i += 1
            if args.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            send_err.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got_data = bytearray(rest)
    while len(got_data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return ws_fail(status, f"timeout after {len(got_data)} of {n} bytes")
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except OSError as e:
            return ws_fail(status, f"recv after {len(got_data)} bytes: {e}")
        if not chunk:
            return ws_fail(status, f"closed after {len(got_data)} of {n} bytes")
        got_data += chunk
    t.join(max(0.0, deadline - time.monotonic()))
    if send_err:
        return ws_fail(status, f"send: {send_err[0]}")
    if bytes(got_data[:n]) != payload or len(got_data) > n:
        return ws_fail(status, "echoed bytes differ")
    if args.half_close:
        # the server must finish echoing and then close
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if sock.recv(1) != b"":
                return ws_fail(status, "extra bytes after echo")
        except OSError as e:
            return ws_fail(status, f"no close after half-close: {e}")
    sock.close()
    print(f"status=101 echo=ok bytes={n}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host_arg", metavar="HOST")
    ap.add_argument("port", metavar="PORT", type=int)
    ap.add_argument("--send-file", metavar="F", help="send this file instead of stdin")
    ap.add_argument("--byte-by-byte", metavar="DELAY_MS", type=float,
                    help="send one byte at a time with this delay between bytes")
    ap.add_argument("--half-close", action="store_true", help="shutdown(SHUT_WR) after sending")
    ap.add_argument("--timeout", metavar="S", type=float, default=10.0,
                    help="overall read deadline after sending (default 10)")
    ap.add_argument("--expect-close", action="store_true",
                    help="exit 0 only if the peer closes within the timeout")
    ap.add_argument("--ws-echo", metavar="N", type=int,
                    help="upgrade to websocket, echo N random bytes, verify")
    ap.add_argument("--host", metavar="H", help="Host header for --ws-echo (default HOST:PORT)")
    ap.add_argument("--path", metavar="P", default="/", help="request target for --ws-echo")
    args = ap.parse_args()
    if args.ws_echo is not None:
        return ws_mode(args)
    return raw_mode(args)


if __name__ == "__main__":
    sys.exit(main())
