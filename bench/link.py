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
import json
import signal
import socket
import struct
import sys
import threading
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


class Connection:
    """One forwarded connection: a thread per direction, blocking reads and writes. A forwarder
    on this machine competes for its CPU with everything it measures, which a real link does
    not; an asyncio loop spent about twice this one's CPU per message."""

    def __init__(self, link: "Link", client: socket.socket, upstream: socket.socket, counter: InFlight | None) -> None:
        self.link, self.client, self.upstream, self.counter = link, client, upstream, counter
        self.running = 2
        self.aborted = False

    def start(self) -> None:
        for source, target, to_broker in ((self.client, self.upstream, True), (self.upstream, self.client, False)):
            threading.Thread(target=self.pipe, args=(source, target, to_broker), daemon=True).start()

    def pipe(self, source: socket.socket, target: socket.socket, to_broker: bool) -> None:
        counter = self.counter
        try:
            while data := source.recv(65536):
                if counter is not None:  # before it is passed on: its answer may come back at once
                    with self.link.lock:
                        counter.feed(to_broker, data)
                target.sendall(data)
        except OSError:
            pass
        with self.link.lock:
            self.running -= 1
            last = self.running == 0
            if last:
                self.link.connections.discard(self)
            aborted = self.aborted
        if not aborted:
            try:
                target.shutdown(socket.SHUT_WR)  # pass the end of the stream on
            except OSError:
                pass
        if last:  # the other direction is done with both sockets too
            self.client.close()
            self.upstream.close()
            if counter is not None and counter.publishes > 0:
                print(json.dumps({"receive_maximum_granted": counter.granted, "max_in_flight": counter.max_in_flight,
                                  "publishes": counter.publishes}), flush=True)

    def abort(self) -> None:
        """Called under the link's lock. With SO_LINGER 0 the close sends RST, as a vanished peer
        would; shutting down the read side wakes both threads, and the last one closes."""
        self.aborted = True
        for sock in (self.client, self.upstream):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass


class Link:
    def __init__(self, listen_port: int, target_port: int, count: bool) -> None:
        self.listen_port, self.target_port, self.count = listen_port, target_port, count
        self.lock = threading.Lock()
        self.connections: set[Connection] = set()
        self.listener: socket.socket | None = None

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # down: the listener was shut down
                listener.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, client, upstream, InFlight() if self.count else None)
            with self.lock:
                self.connections.add(connection)
                if self.listener is not listener:  # went down meanwhile: this one is reset too
                    connection.abort()
            connection.start()

    def up(self, *_: object) -> None:
        if self.listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.listen_port))
            listener.listen(128)
            self.listener = listener
            threading.Thread(target=self.accept, args=(listener,), daemon=True).start()
            print(f"up {int(time.time() * 1000)}", flush=True)

    def down(self, *_: object) -> None:
        if self.listener is not None:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); new connections are refused
            self.listener = None
        with self.lock:
            for connection in list(self.connections):
                connection.abort()
        print(f"down {int(time.time() * 1000)}", flush=True)


def main(listen_port: int, target_port: int, count: bool) -> None:
    link = Link(listen_port, target_port, count)
    signal.signal(signal.SIGUSR1, link.down)  # handlers run on this thread, between its waits
    signal.signal(signal.SIGUSR2, link.up)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    link.up()
    while True:
        signal.pause()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), "--count-inflight" in sys.argv[3:])
