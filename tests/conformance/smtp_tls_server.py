#!/usr/bin/env python3
"""Minimal ESMTP server with STARTTLS for the posttls-finger DANE conformance test.

Listens on 127.0.0.1:PORT (and [::1]:PORT with --ipv6), answers EHLO with
STARTTLS, does the TLS handshake with a certificate chosen by SNI, answers a
second EHLO and QUIT, and logs one line per connection:

    conn [ADDR]:PORT sni=NAME|- tls=VERSION/CIPHER      (handshake done)
    conn [ADDR]:PORT sni=NAME|- error=TEXT              (handshake failed)
    conn [ADDR]:PORT plain                              (no STARTTLS)

Certificates come from the test world (DIR/certs/...):
    --cert NAME=CHAINFILE:KEYFILE  (repeatable) for SNI NAME
    --default CHAINFILE:KEYFILE    for every other SNI, and no SNI

Prints "ready" on stdout once every socket listens. Stops on SIGTERM/SIGINT.
Standard library only.
"""

import argparse
import signal
import socket
import socketserver
import ssl
import sys
import threading

TIMEOUT = 10  # seconds per socket operation


def make_context(chain, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(chain, key)
    return ctx


class Handler(socketserver.StreamRequestHandler):
    timeout = TIMEOUT

    def setup(self):
        super().setup()
        self.sni = None
        self.tls_info = None

    def send(self, text):
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def dialogue(self):
        """One command loop; returns 'starttls', 'quit' or 'eof'."""
        while True:
            line = self.rfile.readline(1024)
            if not line:
                return "eof"
            verb = line.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            if verb == "EHLO":
                if self.tls_info is None:
                    self.send("250-mx.world.test\r\n250-PIPELINING\r\n250 STARTTLS")
                else:
                    self.send("250-mx.world.test\r\n250 PIPELINING")
            elif verb == "HELO":
                self.send("250 mx.world.test")
            elif verb == "STARTTLS" and self.tls_info is None:
                self.send("220 2.0.0 Ready to start TLS")
                return "starttls"
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return "quit"
            elif verb in ("NOOP", "RSET"):
                self.send("250 2.0.0 OK")
            else:
                self.send("502 5.5.2 Command not implemented")

    def log(self, text):
        server = self.server
        with server.log_lock:
            print("conn [%s]:%s %s" % (self.client_address[0], self.client_address[1], text),
                  file=server.log, flush=True)

    def handle(self):
        # One log line per connection, written as soon as the outcome is known
        # (right after the handshake), so that a caller who sees the client
        # finish can rely on finding it.
        server = self.server
        try:
            self.send("220 mx.world.test ESMTP conformance")
            if self.dialogue() != "starttls":
                self.log("plain")
                return
            tls = server.default_ctx.wrap_socket(self.connection, server_side=True,
                                                 do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            finally:
                self.sni = getattr(tls, "sni_name", None)
            self.tls_info = "%s/%s" % (tls.version(), tls.cipher()[0])
            self.log("sni=%s tls=%s" % (self.sni or "-", self.tls_info))
            self.connection = tls
            self.rfile = tls.makefile("rb")
            self.wfile = tls.makefile("wb")
            self.dialogue()
        except (OSError, ssl.SSLError, ValueError) as e:
            if self.tls_info is None:
                self.log("sni=%s error=%s" % (self.sni or "-",
                                              str(e).replace("\n", " ")[:200]))


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Server6(Server):
    address_family = socket.AF_INET6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--ipv6", action="store_true", help="also listen on [::1]")
    ap.add_argument("--default", required=True, metavar="CHAIN:KEY")
    ap.add_argument("--cert", action="append", default=[], metavar="NAME=CHAIN:KEY")
    ap.add_argument("--log", required=True)
    args = ap.parse_args()

    contexts = {}
    for spec in args.cert:
        name, files = spec.split("=", 1)
        chain, key = files.split(":", 1)
        contexts[name.lower()] = make_context(chain, key)
    chain, key = args.default.split(":", 1)
    default_ctx = make_context(chain, key)

    def sni_cb(sslsock, name, _ctx):
        sslsock.sni_name = name
        ctx = contexts.get((name or "").lower().rstrip("."))
        if ctx is not None:
            sslsock.context = ctx
        return None

    default_ctx.sni_callback = sni_cb
    log = open(args.log, "a", encoding="ascii", errors="replace")
    log_lock = threading.Lock()

    servers = [(Server, "127.0.0.1")]
    if args.ipv6:
        servers.append((Server6, "::1"))
    running = []
    for cls, host in servers:
        srv = cls((host, args.port), Handler)
        srv.contexts, srv.default_ctx = contexts, default_ctx
        srv.log, srv.log_lock = log, log_lock
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        running.append(srv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    for srv in running:
        srv.shutdown()
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
