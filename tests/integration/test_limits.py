"""[limits]: connection limits per client address and for the whole gateway, and the
rate of new connections per client, with python3-websockets, raw sockets and an HTTP/2
client (python3-h2). A refused connection gets 429 (client limits) or 503 (the gateway
is full) with Retry-After and a one-line reason naming the limit, before any upstream
work; its place in the counts is released when it closes.
"""

import asyncio
import http
import contextlib
import os
import sys
import tempfile
import time

import websockets.exceptions

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402
import reload_helpers as rh  # noqa: E402


def limits_table(**values) -> str:
    return "\n" + h.toml_table("limits", values).replace("[[limits]]", "[limits]") + "\n"


async def upgrade(port: int, host: str = "127.0.0.1") -> h.HttpResponse:
    return await h.http_exchange(host, port, h.upgrade_request("/echo", "127.0.0.1"))


async def connect_when_admitted(tc, port: int, stack: contextlib.AsyncExitStack,
                                timeout: float = 10.0, host: str = "127.0.0.1"):
    """Opens a WebSocket, retrying (bounded) while the gateway still answers 429/503, or
    closes at once without an answer (more than twice over the limit): a closed
    connection's slot is released when the gateway has seen it close, which a slow (e.g.
    ASan) build on a busy machine may not have done yet."""
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        try:
            return await stack.enter_async_context(h.ws_connect(port, host=host))
        except websockets.exceptions.InvalidStatusCode as e:
            if e.status_code not in (429, 503) or time.monotonic() > deadline:
                raise
        except websockets.exceptions.InvalidMessage:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)
    tc.fail("no WebSocket admitted")


class PerClient(h.GatewayCase):
    async def test_h1_h1_per_client_429_then_slot_released(self):
        backend = await self.start_backend()
        admin_port = h.free_port()
        gw = await self.start_gateway(ac.with_admin(
            h.simple_config(h.free_port(), [backend.address]), admin_port)
            + limits_table(max_connections_per_client=3))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        async with contextlib.AsyncExitStack() as stack:
            socks = [await stack.enter_async_context(h.ws_connect(gw.port)) for _ in range(3)]
            for i, ws in enumerate(socks):
                await ws.send(f"m{i}")
                self.assertEqual(await ws.recv(), f"m{i}")
            # The 4th, with websockets: 429.
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                async with h.ws_connect(gw.port):
                    pass
            self.assertEqual(cm.exception.status_code, 429)
            self.assertEqual(cm.exception.headers.get("Retry-After"), "1")
            # ... and with a raw socket: the status line, Retry-After, the reason.
            resp = await upgrade(gw.port)
            h.assert_error_response(self, resp, 429, "4th connection")
            self.assertEqual(resp.header("Retry-After"), "1")
            self.assertEqual(resp.body.decode().strip(),
                             "connection limit reached: max_connections_per_client = 3 "
                             "for this client address")
            self.assertEqual(len(backend.requests), 3, "a refused request reached the backend")
            line = await gw.wait_access_line(lambda f: f.get("status") == "429", "a 429")
            self.assertIn("max_connections_per_client", line.get("reason", ""))
            # One closes: a new one gets in, and the count is exact again (the next is 429).
            await socks[0].close()
            ws = await connect_when_admitted(self, gw.port, stack)
            await ws.send("again")
            self.assertEqual(await ws.recv(), "again")
            h.assert_error_response(self, await upgrade(gw.port), 429, "over again")
            m = await admin.wait_metrics(
                lambda m: m.value("wsgate_limit_rejections_total", limit="per_client") >= 3,
                "per_client rejections")
            self.assertEqual(m.value("wsgate_limit_rejections_total", limit="rate"), 0)
            self.assertEqual(m.value("wsgate_limit_rejections_total", limit="max_connections"), 0)

    async def test_h1_h1_kept_alive_http_connection_keeps_its_place(self):
        """A client connection kept alive between forwarded HTTP requests still counts:
        its place is the connection's, not one request's."""
        backend = await self.start_backend(
            process_request=lambda path, _h: (http.HTTPStatus.OK, [], b"page")
            if path.startswith("/echo/page") else None)
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address])
                                      + limits_table(max_connections_per_client=1))
        async def get(conn):
            await conn.send(b"GET /echo/page HTTP/1.1\r\nHost: a\r\n\r\n")
            data = b""
            while not data.endswith((b"page", b"address\n")):
                chunk = await conn.recv(10.0)
                if not chunk:
                    break
                data += chunk
            return data

        # The harness's start-up probe may still hold the place for a moment: retry
        # (bounded) while the gateway answers 429.
        deadline = time.monotonic() + 10
        while True:
            conn = await h.RawConn.open("127.0.0.1", gw.port)
            first = await get(conn)
            if not first.startswith(b"HTTP/1.1 429") or time.monotonic() > deadline:
                break
            conn.close()
            await asyncio.sleep(0.05)
        try:
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
            second = await get(conn)  # a second request on the one connection
            self.assertTrue(second.startswith(b"HTTP/1.1 200"), second)
            # Idle between requests, it still holds the client's only place.
            h.assert_error_response(self, await upgrade(gw.port), 429, "second connection")
        finally:
            conn.close()
        ws = await connect_when_admitted(self, gw.port, contextlib.AsyncExitStack())
        await ws.close()

    async def test_h1_h1_no_leak_after_many_refusals(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address])
                                      + limits_table(max_connections_per_client=2))
        for round_ in range(2):
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(2):
                    await connect_when_admitted(self, gw.port, stack)
                # Refusals: a full request, a client that leaves before reading the answer,
                # and one that sends half a head then closes.
                for i in range(30):
                    if i % 3 == 0:
                        # 429, or closed at once while earlier refused ones are still
                        # being closed (more than twice over).
                        resp = await upgrade(gw.port)
                        if resp.raw:
                            h.assert_error_response(self, resp, 429, f"#{i}")
                        else:
                            self.assertTrue(resp.closed)
                    else:
                        conn = await h.RawConn.open("127.0.0.1", gw.port)
                        data = h.upgrade_request("/echo", "127.0.0.1")
                        await conn.send(data if i % 3 == 1 else data[:20])
                        conn.close()
            # Both closed: every slot (refused ones included) comes back, so two are
            # admitted again in the next round.
            self.assertEqual(len(backend.requests), 2 * (round_ + 1))

    async def test_h1_idle_tcp_connections_count_and_far_over_closed_at_once(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address])
                                      + limits_table(max_connections_per_client=2))
        idle = [await h.RawConn.open("127.0.0.1", gw.port) for _ in range(2)]
        try:
            # Two connections that never sent a byte hold this client's two places, once
            # the gateway has accepted them: until then (a slow, e.g. ASan, build) a
            # WebSocket may still get in; it is closed and tried again (bounded).
            status = None
            for _ in range(50):
                try:
                    async with h.ws_connect(gw.port):
                        pass
                except websockets.exceptions.InvalidStatusCode as e:
                    status = e.status_code
                    break
                await asyncio.sleep(0.1)
            self.assertEqual(status, 429)
            # More than twice over (a 5th open connection here) is closed at once, with no
            # answer and nothing read. Three more open: at least one of them is closed
            # (two if the refused WebSocket above is still being closed), and at least
            # one waits for its head.
            extra = [await h.RawConn.open("127.0.0.1", gw.port) for _ in range(3)]
            try:
                results = await asyncio.gather(*(x.read_until_eof(2) for x in extra))
                closed_empty = [data == b"" and closed for data, closed in results]
                self.assertIn(sum(closed_empty), (1, 2), results)
            finally:
                for x in extra:
                    x.close()
        finally:
            for conn in idle:
                conn.close()
        async with contextlib.AsyncExitStack() as stack:
            ws = await connect_when_admitted(self, gw.port, stack)
            await ws.send("ok")
            self.assertEqual(await ws.recv(), "ok")


class Rate(h.GatewayCase):
    async def test_h1_h1_rate_burst_then_429_then_refill(self):
        if not h.ipv6_loopback_available():
            self.skipTest("no ::1 on this machine")
        backend = await self.start_backend()
        # The harness's readiness probe connects to the first listener (127.0.0.1) and
        # takes a token there; the burst is measured from ::1, whose bucket is untouched.
        v6_port = h.free_port("::1")
        gw = await self.start_gateway(
            h.simple_config(h.free_port(), [backend.address],
                            extra_listeners=[f"[::1]:{v6_port}"])
            + limits_table(new_connections_per_second_per_client=2, new_connections_burst=3))
        start = time.monotonic()
        for i in range(3):
            async with h.ws_connect(v6_port, host="::1") as ws:
                await ws.send(f"b{i}")
                self.assertEqual(await ws.recv(), f"b{i}")
        resp = await upgrade(v6_port, "::1")
        h.assert_error_response(self, resp, 429, "after the burst")
        self.assertEqual(resp.header("Retry-After"), "1")
        self.assertEqual(resp.body.decode().strip(),
                         "connection rate limit reached: new_connections_per_second_per_client "
                         "= 2 (burst 3) for this client address")
        self.assertEqual(len(backend.requests), 3)
        # A token comes back 0.5 s after the first was taken; until then: 429.
        async with contextlib.AsyncExitStack() as stack:
            ws = await connect_when_admitted(self, v6_port, stack, host="::1")
            self.assertGreaterEqual(time.monotonic() - start, 0.4)
            await ws.send("refilled")
            self.assertEqual(await ws.recv(), "refilled")
        line = await gw.wait_access_line(lambda f: f.get("status") == "429", "a 429")
        self.assertIn("new_connections_per_second_per_client", line.get("reason", ""))
        self.assertTrue(line.get("client", "").startswith("[::1]:"), line)


class Overall(h.GatewayCase):
    async def test_h1_h1_max_connections_503(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address])
                                      + limits_table(max_connections=2))
        async with contextlib.AsyncExitStack() as stack:
            socks = [await stack.enter_async_context(h.ws_connect(gw.port)) for _ in range(2)]
            resp = await upgrade(gw.port)
            h.assert_error_response(self, resp, 503, "3rd connection")
            self.assertEqual(resp.header("Retry-After"), "1")
            self.assertEqual(resp.body.decode().strip(),
                             "connection limit reached: max_connections = 2 for the whole gateway")
            self.assertEqual(len(backend.requests), 2)
            await socks[1].close()
            ws = await connect_when_admitted(self, gw.port, stack)
            await ws.send("x")
            self.assertEqual(await ws.recv(), "x")


class Http2Tls(h.GatewayCase):
    """HTTP/2 by ALPN over TLS (the TCP connection's place moves from its HTTP/1.1
    session to the HTTP/2 one); Http2Cleartext runs the same over h2c."""
    tls = True

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self._certdir = tempfile.TemporaryDirectory(prefix="wsgate-limits-")
        self.addCleanup(self._certdir.cleanup)
        self.cert = c.make_certificate(self._certdir.name) if self.tls else None

    async def test_h2_h1_streams_count_per_client(self):
        backend = await self.start_backend(compression=None)
        port = h.free_port()
        scheme = "https" if self.tls else "http"
        gw = await self.start_gateway(
            c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                     [{"path": "/echo", "upstream": "echo"}], tls=self.cert, h2c=not self.tls)
            + limits_table(max_connections_per_client=3))
        conn = await c.H2Conn.open("127.0.0.1", port, tls=self.tls)
        self.addAsyncCleanup(conn.close)
        # The TCP connection is one; two streams make three.
        streams = [await c.H2WebSocket.open(conn, "/echo", scheme=scheme) for _ in range(2)]
        for i, ws in enumerate(streams):
            await ws.send(h.OP_TEXT, f"s{i}".encode())
            self.assertEqual(await ws.recv_message(), (h.OP_TEXT, f"s{i}".encode()))
        refused = await c.H2WebSocket.open(conn, "/echo", scheme=scheme, expect_status=429)
        # The body's DATA may come in a later read than the HEADERS: wait for the end.
        await conn.wait_for(lambda: refused.st.ended or refused.st.reset is not None, 15,
                            "the 429's body")
        self.assertEqual(refused.st.header("retry-after"), "1")
        self.assertEqual(bytes(refused.st.body).decode().strip(),
                         "connection limit reached: max_connections_per_client = 3 "
                         "for this client address")
        self.assertEqual(len(backend.requests), 2)
        line = await gw.wait_access_line(
            lambda f: f.get("status") == "429" and f.get("proto") == "h2", "an h2 429")
        self.assertIn("max_connections_per_client", line.get("reason", ""))
        # A stream reset gives its place back.
        await conn.reset(streams[0].st)
        deadline = time.monotonic() + 10
        for _ in range(200):
            st = await conn.request(c.connect_headers("/echo", scheme=scheme))
            await conn.response(st)
            if st.status == 200 or time.monotonic() > deadline:
                break
            self.assertEqual(st.status, 429)
            await asyncio.sleep(0.05)
        self.assertEqual(st.status, 200)
        ws = c.H2WebSocket(conn, st)
        await ws.send(h.OP_TEXT, b"back")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"back"))


class Http2Cleartext(Http2Tls):
    tls = False


class Reload(h.GatewayCase):
    async def test_h1_reload_tightens_the_limit_counting_open_connections(self):
        """A reload that lowers max_connections_per_client applies at once and counts the
        connections opened before it; raising it again lets new ones in."""
        backend = await self.start_backend()
        port = h.free_port()
        base = h.simple_config(port, [backend.address])
        gw = await self.start_gateway(base + limits_table(max_connections_per_client=4))
        async with contextlib.AsyncExitStack() as stack:
            socks = [await stack.enter_async_context(h.ws_connect(gw.port)) for _ in range(3)]
            rh.write_config(gw, base + limits_table(max_connections_per_client=2))
            await rh.sighup(gw, rh.RELOADED)
            # 3 open (from before the reload) >= 2: refused, not "2 more".
            h.assert_error_response(self, await upgrade(gw.port), 429, "after tightening")
            for i, ws in enumerate(socks):  # the established ones are untouched
                await ws.send(f"still {i}")
                self.assertEqual(await ws.recv(), f"still {i}")
            rh.write_config(gw, base + limits_table(max_connections_per_client=5))
            await rh.sighup(gw, rh.RELOADED)
            extra = [await connect_when_admitted(self, gw.port, stack) for _ in range(2)]
            await extra[-1].send("in")
            self.assertEqual(await extra[-1].recv(), "in")
            h.assert_error_response(self, await upgrade(gw.port), 429, "6th after raising")
            # [limits] removed: no limit at all.
            rh.write_config(gw, base)
            await rh.sighup(gw, rh.RELOADED)
            for _ in range(3):
                await stack.enter_async_context(h.ws_connect(gw.port))


if __name__ == "__main__":
    h.main()
