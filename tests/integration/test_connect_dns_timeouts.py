"""CONNECT tunnels and the target's name resolution and connect, against a small DNS
responder on 127.0.0.1 (the config's `nameservers`):

  - a name whose A record is 127.0.0.1 (a public-looking name, DNS rebinding) is denied
    by a host rule alone, and allowed once a cidr rule names loopback;
  - NXDOMAIN -> 502; a nameserver that never answers -> 504 after resolve_timeout;
  - a target that never completes the TCP handshake (full accept backlog) -> 504 after
    connect_timeout;
  - a tunnel is not cut by a drain: it runs until drain_timeout closes it.

The responder answers A queries for REBIND_NAME with 127.0.0.1, every other A/AAAA
query for it with no records, NXDOMAIN for NX_NAME, and drops everything for SILENT_NAME.
"""

import asyncio
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402

BODY = b"reached by name\n" * 50
REBIND_NAME = "rebind.wsgate-test.example"
NX_NAME = "nothing.wsgate-test.example"
SILENT_NAME = "silent.wsgate-test.example"


def qname(packet: bytes) -> tuple[str, int, int]:
    """(name, qtype, end offset of the question) of a DNS query (RFC 1035 4.1.2)."""
    labels, i = [], 12
    while packet[i] != 0:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode().lower())
        i += 1 + n
    qtype = struct.unpack("!H", packet[i + 1:i + 3])[0]
    return ".".join(labels), qtype, i + 5


class DnsResponder:
    """A UDP DNS server on 127.0.0.1 in a thread; stopped (and joined) by stop()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + 120  # bounded even if stop() is never called
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                packet, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            try:
                name, qtype, end = qname(packet)
            except (IndexError, UnicodeDecodeError):
                continue
            self.queries.append((name, qtype))
            if name == SILENT_NAME:
                continue
            rcode = 3 if name != REBIND_NAME else 0  # NXDOMAIN for all but the rebinder
            answer = b""
            if name == REBIND_NAME and qtype == 1:
                # RFC 1035 4.1.3: a pointer to the question's name, A, IN, TTL, 4 bytes.
                answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
            flags = 0x8180 | rcode  # QR, RD, RA
            header = packet[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0)
            self.sock.sendto(header + packet[12:end] + answer, peer)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class ConnectDnsTimeouts(h.GatewayCase):
    async def start(self, allow, **connect_keys):
        self.dns = DnsResponder()
        self.addCleanup(self.dns.stop)
        port = h.free_port()
        text = f'nameservers = ["127.0.0.1:{self.dns.port}"]\n' + ch.connect_config(
            port, allow, connect_keys=connect_keys)
        return await self.start_gateway(text)

    async def web(self):
        web = ch.HttpServer({"index.html": BODY})
        await web.__aenter__()
        self.addAsyncCleanup(web.__aexit__, None, None, None)
        return web

    async def connect_status(self, gw, target):
        sock, head = await ch.raw_connect(gw.port, target, timeout=15)
        sock.close()
        return head

    async def test_connect_name_resolving_to_loopback_denied_by_host_rule(self):
        web = await self.web()
        gw = await self.start([{"host": "*.wsgate-test.example", "ports": [web.port]}])
        head = await self.connect_status(gw, f"{REBIND_NAME}:{web.port}")
        self.assertTrue(head.startswith(b"HTTP/1.1 403 "), head)
        self.assertIn((REBIND_NAME, 1), self.dns.queries)  # the name was really resolved
        line = await gw.wait_access_line(lambda f: f.get("status") == "403", "the 403")
        self.assertIn("loopback 127.0.0.0/8", line["reason"])
        self.assertEqual(line["target"], f"{REBIND_NAME}:{web.port}")

    async def test_connect_name_resolving_to_loopback_allowed_by_cidr_rule(self):
        web = await self.web()
        gw = await self.start([{"cidr": "127.0.0.0/8", "ports": [web.port]}])
        rc, out, err = await ch.curl("-x", f"http://127.0.0.1:{gw.port}", "--proxytunnel",
                                     f"http://{REBIND_NAME}:{web.port}/index.html")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, BODY)

    async def test_connect_nxdomain_gets_502(self):
        gw = await self.start([{"host": "*.wsgate-test.example", "ports": [443]}])
        head = await self.connect_status(gw, f"{NX_NAME}:443")
        self.assertTrue(head.startswith(b"HTTP/1.1 502 "), head)
        line = await gw.wait_access_line(lambda f: f.get("status") == "502", "the 502")
        self.assertIn(f"cannot resolve {NX_NAME}", line["reason"])

    async def test_connect_silent_nameserver_gets_504_after_resolve_timeout(self):
        gw = await self.start([{"host": "*.wsgate-test.example", "ports": [443]}],
                              resolve_timeout="700ms")
        started = time.monotonic()
        head = await self.connect_status(gw, f"{SILENT_NAME}:443")
        elapsed = time.monotonic() - started
        self.assertTrue(head.startswith(b"HTTP/1.1 504 "), head)
        self.assertGreaterEqual(elapsed, 0.6)
        self.assertLess(elapsed, 5)
        line = await gw.wait_access_line(lambda f: f.get("status") == "504", "the 504")
        self.assertIn("timed out resolving", line["reason"])

    async def test_connect_target_that_never_accepts_gets_504_after_connect_timeout(self):
        # A listener with a full accept queue: Linux drops further SYNs, so the
        # gateway's connect neither succeeds nor fails.
        stuck = socket.socket()
        self.addCleanup(stuck.close)
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(0)
        port = stuck.getsockname()[1]
        fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
            self.addCleanup(s.close)
        gw = await self.start([{"cidr": "127.0.0.1/32", "ports": [port]}],
                              connect_timeout="800ms")
        started = time.monotonic()
        head = await self.connect_status(gw, f"127.0.0.1:{port}")
        elapsed = time.monotonic() - started
        self.assertTrue(head.startswith(b"HTTP/1.1 504 "), head)
        self.assertGreaterEqual(elapsed, 0.7)
        line = await gw.wait_access_line(lambda f: f.get("status") == "504", "the 504")
        self.assertIn("timed out connecting to 127.0.0.1", line["reason"])

    async def test_connect_tunnel_survives_drain_until_drain_timeout(self):
        echo = socket.socket()
        self.addCleanup(echo.close)
        echo.bind(("127.0.0.1", 0))
        echo.listen(1)
        echo.setblocking(False)
        port = echo.getsockname()[1]
        gw_port = h.free_port()
        text = ch.connect_config(gw_port, [{"cidr": "127.0.0.1/32", "ports": [port]}]).replace(
            'drain_timeout = "10s"', 'drain_timeout = "1500ms"')
        gw = h.Gateway(text)
        await gw.__aenter__()
        try:
            loop = asyncio.get_running_loop()
            sock, head = await ch.raw_connect(gw.port, f"127.0.0.1:{port}")
            self.addCleanup(sock.close)
            self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
            peer, _ = await asyncio.wait_for(loop.sock_accept(echo), 5)
            self.addCleanup(peer.close)
            gw.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)  # well inside drain_timeout: the tunnel still works
            await loop.sock_sendall(sock, b"still here")
            got = b""
            while len(got) < 10:
                chunk = await asyncio.wait_for(loop.sock_recv(peer, 64), 5)
                self.assertTrue(chunk, "tunnel closed during the drain")
                got += chunk
            self.assertEqual(got, b"still here")
            # drain_timeout closes it, and the gateway exits.
            rest = await asyncio.wait_for(loop.sock_recv(sock, 64), 10)
            self.assertEqual(rest, b"")
            code = await gw.wait_exit(10)
            self.assertEqual(code, 0)
        finally:
            await gw.__aexit__(None, None, None)


if __name__ == "__main__":
    h.main()
