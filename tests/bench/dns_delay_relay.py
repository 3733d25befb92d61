#!/usr/bin/env python3
"""A DNS relay that adds a fixed delay to every query (UDP and TCP).

Benchmarks put it in front of the test world's knotd so that the number of
sequential DNS round-trip levels of a resolution shows up as latency:
  dns_delay_relay.py --listen PORT --upstream PORT --delay-ms 50
With --log FILE it appends one line per query it receives, "<qname> <qtype>"
(qname lowercase with its trailing dot, qtype a mnemonic such as MX or
TYPE65), so a benchmark can count what reached the world.
Loopback only. Stops by itself after --lifetime seconds (default 600) or on
SIGTERM. Prints "ready" on stdout once both sockets listen.
"""
import argparse
import asyncio
import signal
import sys

HOST = "127.0.0.1"
QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX",
          16: "TXT", 28: "AAAA", 43: "DS", 46: "RRSIG", 47: "NSEC",
          48: "DNSKEY", 52: "TLSA"}


class QueryLog:
    """Writes "<qname> <qtype>" per query; a no-op without a file."""

    def __init__(self, path):
        self.file = open(path, "a", buffering=1) if path else None

    def write(self, query):
        if self.file is None:
            return
        self.file.write(describe(query) + "\n")


def describe(query):
    """The question of a DNS message as "<qname> <qtype>"."""
    labels, i = [], 12
    try:
        while query[i] != 0:
            n = query[i]
            if n & 0xC0:  # no compression in a question we send
                return "? ?"
            labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        qtype = int.from_bytes(query[i + 1:i + 3], "big")
    except IndexError:
        return "? ?"
    name = ".".join(labels).lower() + "."
    return "%s %s" % (name, QTYPES.get(qtype, "TYPE%d" % qtype))


class UdpRelay(asyncio.DatagramProtocol):
    def __init__(self, upstream, delay, log):
        self.upstream = upstream
        self.delay = delay
        self.log = log
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.log.write(data)
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


async def tcp_client(reader, writer, upstream, delay, log):
    try:
        while True:
            head = await reader.readexactly(2)
            query = await reader.readexactly(int.from_bytes(head, "big"))
            log.write(query)
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
    p.add_argument("--log", help="append '<qname> <qtype>' per query here")
    args = p.parse_args()
    delay = args.delay_ms / 1000
    log = QueryLog(args.log)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: UdpRelay(args.upstream, delay, log), local_addr=(HOST, args.listen))
    server = await asyncio.start_server(
        lambda r, w: tcp_client(r, w, args.upstream, delay, log), HOST, args.listen)
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
