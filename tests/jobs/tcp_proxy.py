"""A stand-in for `kubectl port-forward` in tests: forward 127.0.0.1:LISTEN_PORT to TARGET_HOST:TARGET_PORT.

    python tcp_proxy.py LISTEN_PORT:TARGET_HOST:TARGET_PORT [--delay SECONDS]

The spec is written as `ssh -L` writes it, so the client can move the local port as it does for ssh.

--delay waits before listening, as a real port-forward takes a moment to come up.
"""

from __future__ import annotations

import argparse
import asyncio


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", help="LISTEN_PORT:TARGET_HOST:TARGET_PORT")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    listen, args.target_host, target = args.spec.split(":")
    args.listen_port, args.target_port = int(listen), int(target)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(args.target_host, args.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, target_writer), pipe(target_reader, client_writer))

    await asyncio.sleep(args.delay)
    server = await asyncio.start_server(handle, "127.0.0.1", args.listen_port)
    print(f"Forwarding from 127.0.0.1:{args.listen_port} -> {args.target_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
