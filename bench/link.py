#!/usr/bin/env python3
"""A TCP forwarder that plays the uplink's internet connection in the benchmarks.

    bench/link.py LISTEN_PORT TARGET_PORT [--count-inflight]

SIGUSR1 takes the link down: the listener closes and every open connection is reset, so the
other side sees what it sees when the cloud broker goes away (refused connections).
SIGUSR2 brings it back and prints "up <unix-ms>" at the moment it accepts connections again.

With --count-inflight it also reads the MQTT packets going each way and, when a connection
ends, prints one JSON line: the Receive Maximum the broker granted in its CONNACK (MQTT 5;
null for 3.1.1), the most QoS 1/2 publishes the client had sent and the broker not yet
acknowledged (PUBACK or PUBREC) at any moment, and the publishes counted.
"""
import asyncio
import json
import signal
import socket
import struct
import sys
import time


class InFlight:
    """Counts one connection's unacknowledged QoS 1/2 publishes from the MQTT fixed headers."""

    def __init__(self) -> None:
        self.buffers = {True: bytearray(), False: bytearray()}  # True: client to broker
        self.in_flight = self.max_in_flight = self.publishes = 0
        self.granted: int | None = None

    def feed(self, to_broker: bool, data: bytes) -> None:
        buffer = self.buffers[to_broker]
        buffer += data
        i, end = 0, len(buffer)
        while end - i >= 2:
            j, length, shift = i + 1, 0, 0
            while j < end and buffer[j] & 0x80:
                length |= (buffer[j] & 0x7F) << shift
                shift += 7
                j += 1
            if j >= end:
                break
            length |= buffer[j] << shift
            body = j + 1
            if end - body < length:
                break
            kind = buffer[i] >> 4
            if to_broker and kind == 3 and buffer[i] & 0x06:
                self.publishes += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            elif not to_broker and kind in (4, 5):  # PUBACK, PUBREC
                self.in_flight -= 1
            elif not to_broker and kind == 2 and length > 2:
                self.granted = self.receive_maximum(bytes(buffer[body + 2:body + length]))
            i = body + length
        del buffer[:i]

    @staticmethod
    def receive_maximum(properties: bytes) -> int:
        j, length, shift = 0, 0, 0  # property length (variable byte integer), then id/value pairs
        while properties[j] & 0x80:
            length |= (properties[j] & 0x7F) << shift
            shift += 7
            j += 1
        length |= properties[j] << shift
        j += 1
        end = j + length
        sizes = {0x01: 1, 0x02: 4, 0x11: 4, 0x12: -1, 0x13: 2, 0x15: -1, 0x16: -2, 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: -1, 0x1C: -1,
                 0x1F: -1, 0x21: 2, 0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: -3, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1}
        while j < end:
            key = properties[j]
            j += 1
            size = sizes.get(key)
            if size is None:
                break
            if key == 0x21:
                return int.from_bytes(properties[j:j + 2], "big")
            if size > 0:
                j += size
            else:  # strings and binary data: two-byte length; a user property is two strings
                for _ in range(2 if size == -3 else 1):
                    j += 2 + int.from_bytes(properties[j:j + 2], "big")
        return 65535  # absent: the protocol's default


async def main(listen_port: int, target_port: int, count: bool) -> None:
    loop = asyncio.get_running_loop()
    open_writers: set[asyncio.StreamWriter] = set()
    server: asyncio.base_events.Server | None = None

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: InFlight | None, to_broker: bool) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                if counter is not None:
                    counter.feed(to_broker, data)
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
        counter = InFlight() if count else None
        await asyncio.gather(pipe(client_reader, up_writer, counter, True), pipe(up_reader, client_writer, counter, False))
        open_writers.difference_update((client_writer, up_writer))
        if counter is not None and counter.publishes > 0:
            print(json.dumps({"receive_maximum_granted": counter.granted, "max_in_flight": counter.max_in_flight,
                              "publishes": counter.publishes}), flush=True)

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
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), "--count-inflight" in sys.argv[3:]))
