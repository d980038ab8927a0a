#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""idle_closer.py PORT - a keep-alive HTTP/1.1 origin that answers every request with 200 "ok"
and, after 30 % of its responses, closes the connection 0-2 ms later: an idle timeout that
fires just as a proxy reuses the connection for the next request (tests of pool keepalive)."""
import asyncio
import random
import sys


async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Backend: closer\r\n\r\nok\n")
            await writer.drain()
            if random.random() < 0.3:
                await asyncio.sleep(random.random() * 0.002)
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
