#!/usr/bin/env python3
"""A DNS relay that adds a fixed delay to every query (UDP and TCP).

Benchmarks put it in front of the test world's knotd so that the number of
sequential DNS round-trip levels of a resolution shows up as latency:
  dns_delay_relay.py --listen PORT --upstream PORT --delay-ms 50
Loopback only. Stops by itself after --lifetime seconds (default 600) or on
SIGTERM. Prints "ready" on stdout once both sockets listen.
"""
import argparse
import asyncio
import signal
import sys

HOST = "127.0.0.1"


class UdpRelay(asyncio.DatagramProtocol):
    def __init__(self, upstream, delay):
        self.upstream = upstream
        self.delay = delay
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        asyncio.ensure_future(self.relay(data, addr))

    async def relay(self, data, addr):
        await asyncio.sleep(self.delay)
        loop = asyncio.get_running_loop()
        answer = loop.create_future()

        class Upstream(asyncio.DatagramProtocol):
            def datagram_received(self, reply, _):
                if not answer.done():
                    answer.set_result(reply)

        transport, _ = await loop.create_datagram_endpoint(
            Upstream, remote_addr=(HOST, self.upstream))
        try:
            transport.sendto(data)
            reply = await asyncio.wait_for(answer, timeout=5)
            self.transport.sendto(reply, addr)
        except asyncio.TimeoutError:
            pass
        finally:
            transport.close()


async def tcp_client(reader, writer, upstream, delay):
    try:
        while True:
            head = await reader.readexactly(2)
            query = await reader.readexactly(int.from_bytes(head, "big"))
            await asyncio.sleep(delay)
            up_reader, up_writer = await asyncio.open_connection(HOST, upstream)
            up_writer.write(head + query)
            await up_writer.drain()
            rhead = await up_reader.readexactly(2)
            reply = await up_reader.readexactly(int.from_bytes(rhead, "big"))
            up_writer.close()
            writer.write(rhead + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=50)
    p.add_argument("--lifetime", type=float, default=600)
    args = p.parse_args()
    delay = args.delay_ms / 1000
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: UdpRelay(args.upstream, delay), local_addr=(HOST, args.listen))
    server = await asyncio.start_server(
        lambda r, w: tcp_client(r, w, args.upstream, delay), HOST, args.listen)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(0))
    print("ready", flush=True)
    try:
        await asyncio.wait_for(stop, timeout=args.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
