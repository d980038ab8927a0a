#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""injector.py - a misbehaving keep-alive origin, and a client to catch what it does.

  injector.py serve PORT MODE   origin: every request is answered with 200, headers
                                X-Backend: injector, X-Path: <target>, body "<target>\\n";
                                MODE late: 0.3 s after each response, if no request came
                                meanwhile, an unsolicited second response follows on the same
                                connection; MODE same: the unsolicited response is written in
                                the same segment, right after the real one's last byte.
                                Prints "conn N" for each accepted connection.
  injector.py get PORT DELAY PATH...
                                client: one keep-alive connection, GET each PATH in turn with
                                DELAY seconds between them; prints "PATH -> X-Path X-Injected
                                body" per response (headers "-" when absent).
The unsolicited response: "HTTP/1.1 200 X", Content-Length: 9, X-Injected: yes, "injected!".
"""
import asyncio
import http.client
import sys
import time

INJECTED = b"HTTP/1.1 200 X\r\nContent-Length: 9\r\nX-Injected: yes\r\n\r\ninjected!"


async def serve(port, mode):
    nconn = 0

    async def handle(reader, writer):
        nonlocal nconn
        nconn += 1
        print("conn %d" % nconn, flush=True)
        pending = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if pending:
                    pending.cancel()
                target = head.split(b" ", 2)[1]
                body = target + b"\n"
                resp = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Backend: injector\r\n"
                        b"X-Path: %s\r\n\r\n%s" % (len(body), target, body))
                if mode == "same":
                    resp += INJECTED
                writer.write(resp)
                await writer.drain()
                if mode == "late":
                    async def inject():
                        await asyncio.sleep(0.3)
                        writer.write(INJECTED)
                        await writer.drain()
                    pending = asyncio.ensure_future(inject())
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    async with server:
        await server.serve_forever()


def get(port, delay, paths):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i, p in enumerate(paths):
        if i:
            time.sleep(delay)
        conn.request("GET", p, headers={"Host": "www.example"})
        r = conn.getresponse()
        body = r.read().decode(errors="replace").strip()
        print("%s -> %s %s %s" % (p, r.getheader("X-Path", "-"), r.getheader("X-Injected", "-"),
                                  body), flush=True)


if sys.argv[1] == "serve":
    asyncio.run(serve(int(sys.argv[2]), sys.argv[3]))
else:
    get(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
