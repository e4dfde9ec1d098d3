"""WebSocket peers for tapwire's tests, on Debian's python3-websockets.

  python3 ws_peer.py server PORT [CERT KEY]   echoes: text as "echo: TEXT", binary reversed;
                                              prints "listening"
  python3 ws_peer.py client URL [CERT] [--no-compress] [--after FILE]
        sends a text, a binary message (bytes 0..255), a text in three fragments, a ping, a
        20 KB text, then closes with 1000 "done here"; prints each reply and "done".
        With --after: connects, prints "connected", and waits for FILE to exist first.

permessage-deflate is on (with context takeover) unless --no-compress.
"""
import asyncio
import os
import ssl
import sys

import websockets

BIG = "tapwire websocket " * 1200


async def echo(ws, path=None):
    async for message in ws:
        if isinstance(message, str):
            await ws.send("echo: " + message)
        else:
            await ws.send(bytes(reversed(message)))


async def server(port, cert, key):
    context = None
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    async with websockets.serve(echo, "127.0.0.1", port, ssl=context):
        print("listening", flush=True)
        await asyncio.Future()


async def client(url, cert, compress, after):
    context = None
    if url.startswith("wss:"):
        context = ssl.create_default_context(cafile=cert)
    async with websockets.connect(url, ssl=context, compression="deflate" if compress else None) as ws:
        if after:
            print("connected", flush=True)
            while not os.path.exists(after):
                await asyncio.sleep(0.05)
        await ws.send("hello tapwire")
        print("got", await ws.recv(), flush=True)
        await ws.send(bytes(range(256)))
        print("got", len(await ws.recv()), "bytes", flush=True)
        await ws.send(["frag-1 ", "frag-2 ", "frag-3"])
        print("got", await ws.recv(), flush=True)
        pong = await ws.ping(b"are you there")
        await pong
        print("got pong", flush=True)
        await ws.send(BIG)
        print("got", len(await ws.recv()), "chars", flush=True)
        await ws.close(1000, "done here")
    print("done", flush=True)


if sys.argv[1] == "server":
    asyncio.run(server(int(sys.argv[2]), *(sys.argv[3:5] if len(sys.argv) > 4 else (None, None))))
else:
    after = sys.argv[sys.argv.index("--after") + 1] if "--after" in sys.argv else None
    args = [a for a in sys.argv[2:] if not a.startswith("--") and a != after]
    asyncio.run(client(args[0], args[1] if len(args) > 1 else None, "--no-compress" not in sys.argv, after))
