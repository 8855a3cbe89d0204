"""PROXY protocol v1/v2 on a listener (proxy_protocol = true), with raw sockets writing
the headers by hand and python3-websockets speaking WebSocket (plain and TLS) behind
them: the header's source address is the client for the access log, X-Forwarded-For,
[limits] and the hash balancer; a connection from outside proxy_protocol_from, a
malformed header and a header that never completes are closed and counted. Also
trusted_proxies: a trusted peer's X-Forwarded-For names the client.
HAProxy as a real balancer: test_proxy_protocol_haproxy.py.
"""

import asyncio
import contextlib
import os
import socket
import struct
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src: str, sport: int, dport: int, dst: str = "127.0.0.1") -> bytes:
    family = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack(">H", len(value)) + value


def v2(src: str, sport: int, dport: int, tlvs: bytes = b"", local: bool = False) -> bytes:
    if local:
        return V2_SIG + b"\x20\x00" + struct.pack(">H", 0)
    if ":" in src:
        body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, "::1")
                + struct.pack(">HH", sport, dport))
        fam = b"\x21"
    else:
        body = (socket.inet_aton(src) + socket.inet_aton("127.0.0.1")
                + struct.pack(">HH", sport, dport))
        fam = b"\x11"
    body += tlvs
    return V2_SIG + b"\x21" + fam + struct.pack(">H", len(body)) + body


def pp_listener(frm=("127.0.0.1",), **extra) -> dict:
    return {"proxy_protocol": True, "proxy_protocol_from": list(frm), **extra}


@contextlib.asynccontextmanager
async def proxied_ws(port: int, header: bytes, *, pieces: int = 1, **kwargs):
    """A WebSocket over a socket that first sends `header` (in `pieces` writes)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        step = max(1, len(header) // pieces)
        for i in range(0, len(header), step):
            sock.sendall(header[i:i + step])
        sock.setblocking(False)
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("open_timeout", h.OPEN_TIMEOUT)
        kwargs.setdefault("close_timeout", 10)
        scheme = "wss" if "ssl" in kwargs else "ws"
        host = kwargs.pop("server_hostname", "127.0.0.1")
        if "ssl" in kwargs:
            kwargs["server_hostname"] = host
        async with h.websockets.connect(f"{scheme}://{host}:{port}/echo", sock=sock,
                                        **kwargs) as ws:
            yield ws
    finally:
        sock.close()


async def closed_without_answer(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends `data` and reads until the gateway closes (bounded); what it sent back."""
    async with await h.RawConn.open("127.0.0.1", port) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await conn.send(data)
        got, closed = await conn.read_until_eof(timeout)
        if not closed:
            raise AssertionError(f"the gateway did not close within {timeout}s")
        return got


class ProxyProtocol(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()

    async def gateway(self, listener: dict, extra: str = "", **kw):
        self.admin_port = h.free_port()
        gw = await self.start_gateway(ac.with_admin(
            h.simple_config(h.free_port(), [self.backend.address], listener=listener, **kw),
            self.admin_port) + extra)
        self.admin = ac.Admin(self.admin_port)
        await self.admin.wait_up()
        return gw

    async def rejections(self, reason: str) -> float:
        m = await self.admin.metrics()
        return m.value("wsgate_proxy_protocol_rejections_total", reason=reason)

    async def echo_once(self, ws, text: str = "hi") -> None:
        await ws.send(text)
        self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)

    async def test_v1_tcp4_names_the_client(self):
        gw = await self.gateway(pp_listener())
        for pieces in (1, 3, 45):  # whole, and cut anywhere: the header arrives in pieces
            with self.subTest(pieces=pieces):
                sport = 40000 + pieces
                async with proxied_ws(gw.port, v1("203.0.113.9", sport, gw.port),
                                      pieces=pieces) as ws:
                    await self.echo_once(ws)
                    rec = self.backend.conns[-1]
                    self.assertEqual(rec.header("X-Forwarded-For"), "203.0.113.9")
                line = await gw.wait_access_line(
                    lambda f: f.get("client") == f"203.0.113.9:{sport}", "the proxied client")
                self.assertEqual(line["status"], "101")
                self.assertTrue(line["via"].startswith("127.0.0.1:"), line)
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_proxy_protocol_headers_total", version="v1"), 3)

    async def test_v2_ipv6_with_tlvs(self):
        gw = await self.gateway(pp_listener())
        header = v2("2001:db8::7", 50123, gw.port,
                    tlv(0x01, b"h2") + tlv(0x02, b"ws.example.com") + tlv(0x04, b"\0\0\0\0"))
        # The client's handshake in the same segment as the header: it stays unread.
        async with proxied_ws(gw.port, header) as ws:
            await self.echo_once(ws)
            self.assertEqual(self.backend.conns[-1].header("X-Forwarded-For"), "2001:db8::7")
        line = await gw.wait_access_line(lambda f: f.get("client") == "[2001:db8::7]:50123",
                                         "the IPv6 client")
        self.assertEqual(line["proxy_sni"], "ws.example.com")
        self.assertEqual(line["proxy_alpn"], "h2")
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_proxy_protocol_headers_total", version="v2"), 1)

    async def test_v2_header_and_request_in_one_write(self):
        gw = await self.gateway(pp_listener())
        req = h.upgrade_request("/echo", "127.0.0.1", extra=[("X-Forwarded-For", "1.2.3.4")])
        ws = await h.RawWebSocket.connect("127.0.0.1", gw.port,
                                          request=v2("198.51.100.20", 1234, gw.port) + req)
        async with ws:
            rec = (await self.backend.wait_conns(1))[-1]
            # Not a trusted proxy's header: passed on, and the client appended.
            self.assertEqual(rec.header("X-Forwarded-For"), "1.2.3.4, 198.51.100.20")

    async def test_v1_unknown_and_v2_local_keep_the_peer(self):
        gw = await self.gateway(pp_listener())
        for header in (b"PROXY UNKNOWN\r\n", v2("", 0, 0, local=True)):
            with self.subTest(header=header):
                async with proxied_ws(gw.port, header) as ws:
                    await self.echo_once(ws)
                    self.assertEqual(self.backend.conns[-1].header("X-Forwarded-For"),
                                     "127.0.0.1")
                    port = ws.local_address[1]
                await gw.wait_access_line(lambda f, p=port: f.get("client") ==
                                          f"127.0.0.1:{p}", "the peer as client")

    async def test_malformed_header_closed_and_counted(self):
        gw = await self.gateway(pp_listener())
        before = await self.rejections("malformed")
        for data in (h.upgrade_request("/echo", "127.0.0.1"),       # no header at all
                     b"PROXY TCP4 203.0.113.9 127.0.0.1 99999 80\r\n",  # bad port
                     V2_SIG + b"\x21\x12\x00\x0c" + bytes(12),      # UDP
                     b"\x16\x03\x01\x00\x05hello"):                    # TLS first
            with self.subTest(data=data[:20]):
                got = await closed_without_answer(gw.port, data)
                self.assertEqual(got, b"", "a refused connection got an answer")
        await self.admin.wait_metrics(
            lambda m: m.value("wsgate_proxy_protocol_rejections_total", reason="malformed")
            >= before + 4, "4 malformed headers counted")
        self.assertIn("PROXY protocol: connection from 127.0.0.1:", gw.stderr_text())
        self.assertIn("not a PROXY protocol header", gw.stderr_text())
        self.assertEqual(self.backend.conns, [])

    async def test_incomplete_header_times_out(self):
        gw = await self.gateway(pp_listener(handshake_timeout="600ms"))
        before = await self.rejections("timeout")
        start = time.monotonic()
        got = await closed_without_answer(gw.port, b"PROXY TCP4 203.0.113.9 12", timeout=10)
        elapsed = time.monotonic() - start
        self.assertEqual(got, b"")
        self.assertGreaterEqual(elapsed, 0.5)
        self.assertLess(elapsed, 5.0)
        # Trickling bytes does not stretch the deadline.
        async with await h.RawConn.open("127.0.0.1", gw.port) as conn:
            start = time.monotonic()
            closed = False
            for b in b"PROXY TCP4 203.0.113.9 127.0.0.1 4000 80":
                try:
                    await conn.send(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                if await conn.recv(0.05) == b"":
                    closed = True
                    break
            if not closed:
                _, closed = await conn.read_until_eof(5)
            self.assertTrue(closed)
            self.assertLess(time.monotonic() - start, 5.0)
        await self.admin.wait_metrics(
            lambda m: m.value("wsgate_proxy_protocol_rejections_total", reason="timeout")
            >= before + 2, "2 timeouts counted")

    async def test_peer_outside_proxy_protocol_from_closed(self):
        gw = await self.gateway(pp_listener(frm=("10.0.0.0/8", "::1")))
        before = await self.rejections("not_allowed")
        got = await closed_without_answer(
            gw.port, v1("203.0.113.9", 4000, gw.port) + h.upgrade_request("/echo", "127.0.0.1"))
        self.assertEqual(got, b"")
        await self.admin.wait_metrics(
            lambda m: m.value("wsgate_proxy_protocol_rejections_total", reason="not_allowed")
            >= before + 1, "the refused peer counted")
        self.assertIn("not in proxy_protocol_from", gw.stderr_text())
        self.assertEqual(self.backend.conns, [])

    async def test_tls_behind_the_header(self):
        tmpdir = tempfile.TemporaryDirectory(prefix="wsgate-pp-pki-")
        self.addCleanup(tmpdir.cleanup)
        tmp = tmpdir.name
        pki = h.ThrowawayPki(tmp)
        ca = pki.ca("ca")
        leaf = pki.leaf("a", ca, ["a.test"])
        port = h.free_port()
        text = h.tls_config(f"127.0.0.1:{port}", {"echo": [self.backend.address]},
                            [{"path": "/echo", "upstream": "echo"}],
                            listener_tls={"certificates": [{"cert": leaf.cert, "key": leaf.key}]},
                            listener=pp_listener())
        gw = await self.start_gateway(text)
        ctx = h.client_ssl_context(ca.cert)
        async with proxied_ws(gw.port, v2("192.0.2.44", 7777, gw.port), ssl=ctx,
                              server_hostname="a.test") as ws:
            await self.echo_once(ws)
        line = await gw.wait_access_line(lambda f: f.get("client") == "192.0.2.44:7777",
                                         "the TLS client behind the header")
        self.assertEqual(line["tls"], "TLSv1.3")
        self.assertEqual(self.backend.conns[-1].header("X-Forwarded-For"), "192.0.2.44")
        self.assertEqual(self.backend.conns[-1].header("X-Forwarded-Proto"), "https")

    async def test_limits_count_the_proxied_client(self):
        gw = await self.gateway(pp_listener(),
                                "\n[limits]\nmax_connections_per_client = 1\n")
        async with contextlib.AsyncExitStack() as stack:
            ws = await stack.enter_async_context(proxied_ws(gw.port, v1("203.0.113.9", 1,
                                                                        gw.port)))
            await self.echo_once(ws)
            # Same client through the balancer: over its limit. Another client: fine.
            resp = await h.http_exchange("127.0.0.1", gw.port, v1("203.0.113.9", 2, gw.port)
                                         + h.upgrade_request("/echo", "127.0.0.1"))
            self.assertEqual(resp.status, 429, resp.raw)
            other = await stack.enter_async_context(proxied_ws(gw.port, v1("203.0.113.10", 3,
                                                                           gw.port)))
            await self.echo_once(other)
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_limit_rejections_total", limit="per_client"), 1)

    async def test_hash_balancer_keys_on_the_proxied_client(self):
        b2 = await self.start_backend()
        port = h.free_port()
        text = h.make_config(f"127.0.0.1:{port}",
                             {"echo": [self.backend.address, b2.address]},
                             [{"host": "*", "path": "/echo", "upstream": "echo"}],
                             listener=pp_listener())
        text = text.replace('servers = ', 'balancer = "hash"\nhash_key = "client_ip"\nservers = ')
        gw = await self.start_gateway(text)

        async def server_of(client: str, sport: int) -> str:
            async with proxied_ws(gw.port, v1(client, sport, gw.port)) as ws:
                await self.echo_once(ws)
            line = await gw.wait_access_line(
                lambda f: f.get("client") == f"{client}:{sport}", f"{client}:{sport}")
            return line["upstream"]

        # One client always reaches the same server; different clients reach both.
        first = await server_of("203.0.113.9", 1000)
        for sport in range(1001, 1005):
            self.assertEqual(await server_of("203.0.113.9", sport), first)
        seen = {first}
        for i in range(1, 21):
            seen.add(await server_of(f"198.51.100.{i}", 2000 + i))
            if len(seen) == 2:
                break
        self.assertEqual(seen, {self.backend.address, b2.address})


    async def test_h2c_streams_carry_the_proxied_client(self):
        gw = await self.gateway(pp_listener(h2c=True),
                                "\n[limits]\nmax_connections_per_client = 2\n")
        sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        sock.sendall(v2("203.0.113.77", 4242, gw.port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        conn = c.H2Conn(reader, writer)
        conn.conn.initiate_connection()
        await conn.flush()
        conn._task = asyncio.get_running_loop().create_task(conn._read_loop())
        self.addAsyncCleanup(conn.close)
        ws = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        await ws.send(h.OP_TEXT, b"over h2c")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"over h2c"))
        self.assertEqual(self.backend.conns[-1].header("X-Forwarded-For"), "203.0.113.77")
        # The TCP connection holds one of the client's 2 places, the stream the other:
        # a second stream from the same proxied client is over its limit.
        st = await conn.request(c.connect_headers("/echo", scheme="http"))
        await conn.response(st)
        self.assertEqual(st.status, 429, st.headers)
        await ws.close()
        await gw.wait_access_line(lambda f: f.get("client") == "203.0.113.77:4242"
                                  and f.get("proto") == "h2", "the h2 stream's proxied client")


    async def test_reload_turns_proxy_protocol_on_and_off(self):
        # The listener keeps its socket across reloads; new connections follow the flag.
        gw = await self.gateway({})
        plain = h.simple_config(gw.port, [self.backend.address])
        async with h.ws_connect(gw.port) as ws:
            await self.echo_once(ws)
        rh.write_config(gw, ac.with_admin(h.simple_config(gw.port, [self.backend.address],
                                                          listener=pp_listener()),
                                          self.admin_port))
        await rh.sighup(gw, "configuration reloaded")
        got = await closed_without_answer(gw.port, h.upgrade_request("/echo", "127.0.0.1"))
        self.assertEqual(got, b"")
        async with proxied_ws(gw.port, v1("203.0.113.5", 5555, gw.port)) as ws:
            await self.echo_once(ws)
        self.assertEqual(self.backend.conns[-1].header("X-Forwarded-For"), "203.0.113.5")
        rh.write_config(gw, ac.with_admin(plain, self.admin_port))
        await rh.sighup(gw, "configuration reloaded")
        async with h.ws_connect(gw.port) as ws:
            await self.echo_once(ws)
        self.assertEqual(self.backend.conns[-1].header("X-Forwarded-For"), "127.0.0.1")


class TrustedProxies(h.GatewayCase):
    async def test_trusted_peer_names_the_client(self):
        backend = await self.start_backend()
        gw = await self.start_gateway('trusted_proxies = ["127.0.0.0/8"]\n' + h.simple_config(
            h.free_port(), [backend.address]))
        async with h.ws_connect(gw.port, extra_headers={
                "X-Forwarded-For": "1.1.1.1, 198.51.100.7, 127.0.0.9"}) as ws:
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), 10)
            port = ws.local_address[1]
        rec = backend.conns[-1]
        # The chain goes on with the address of the peer that sent it.
        self.assertEqual(rec.header("X-Forwarded-For"), "1.1.1.1, 198.51.100.7, 127.0.0.9, "
                         "127.0.0.1")
        line = await gw.wait_access_line(lambda f: f.get("client") == "198.51.100.7",
                                         "the forwarded client")
        self.assertEqual(line["via"], f"127.0.0.1:{port}")

    async def test_limits_count_the_forwarded_client_not_the_proxy(self):
        backend = await self.start_backend()
        config = h.simple_config(h.free_port(), [backend.address])
        gw = await self.start_gateway('trusted_proxies = ["127.0.0.0/8"]\n' + config +
                                      "\n[limits]\nmax_connections_per_client = 1\n")

        async def handshake(client: str, timeout: float) -> h.HttpResponse:
            return await h.http_exchange("127.0.0.1", gw.port, h.upgrade_request(
                extra=[("X-Forwarded-For", client)]), timeout=timeout)

        # Three WebSockets through one trusted proxy address (127.0.0.1) for two clients:
        # the proxy itself is never over the per-client limit; the client is.
        async with h.ws_connect(gw.port, extra_headers={"X-Forwarded-For": "198.51.100.7"}) as a:
            async with h.ws_connect(gw.port,
                                    extra_headers={"X-Forwarded-For": "198.51.100.8"}) as b:
                for ws in (a, b):
                    await ws.send("x")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")
                refused = await handshake("198.51.100.7", 10)
                self.assertEqual(refused.status, 429, refused.raw[:300])
        # Its place is given back when the WebSocket ends (bounded: 20 s).
        deadline = time.monotonic() + 20
        while True:
            again = await handshake("198.51.100.7", 2)
            if again.status == 101 or time.monotonic() > deadline:
                break
            await asyncio.sleep(h.POLL_INTERVAL)
        self.assertEqual(again.status, 101, again.raw[:300])

    async def test_untrusted_peer_header_not_believed(self):
        backend = await self.start_backend()
        gw = await self.start_gateway('trusted_proxies = ["10.0.0.0/8"]\n' + h.simple_config(
            h.free_port(), [backend.address]))
        async with h.ws_connect(gw.port, extra_headers={"X-Forwarded-For": "198.51.100.7"}) as ws:
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), 10)
            port = ws.local_address[1]
        self.assertEqual(backend.conns[-1].header("X-Forwarded-For"), "198.51.100.7, 127.0.0.1")
        line = await gw.wait_access_line(lambda f: f.get("client") == f"127.0.0.1:{port}",
                                         "the peer as client")
        self.assertNotIn("via", line)


if __name__ == "__main__":
    h.main()
