#!/usr/bin/env python3
"""A TCP forwarder that plays the uplink's internet connection in the benchmarks.

    bench/link.py LISTEN_PORT TARGET_PORT

SIGUSR1 takes the link down: the listener closes and every open connection is reset, so the
other side sees what it sees when the cloud broker goes away (refused connections).
SIGUSR2 brings it back and prints "up <unix-ms>" at the moment it accepts connections again.
"""
import asyncio
import signal
import socket
import struct
import sys
import time


async def main(listen_port: int, target_port: int) -> None:
    loop = asyncio.get_running_loop()
    open_writers: set[asyncio.StreamWriter] = set()
    server: asyncio.base_events.Server | None = None

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        open_writers.update((client_writer, up_writer))
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))
        open_writers.difference_update((client_writer, up_writer))

    async def up() -> None:
        nonlocal server
        if server is None:
            server = await asyncio.start_server(handle, "127.0.0.1", listen_port, reuse_address=True)
            print(f"up {int(time.time() * 1000)}", flush=True)

    async def down() -> None:
        nonlocal server
        if server is not None:
            server.close()
            server = None
        for writer in list(open_writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close sends RST, as a vanished peer would
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        open_writers.clear()
        print(f"down {int(time.time() * 1000)}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(down()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(up()))
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    await up()
    await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
