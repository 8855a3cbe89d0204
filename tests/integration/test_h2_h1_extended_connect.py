"""HTTP/2 client (RFC 8441 extended CONNECT) -> HTTP/1.1 backend, over TLS (ALPN h2)
and over h2c with prior knowledge: SETTINGS, the handshake, echoes of every message
shape, subprotocols, refusals and the access log.

The client is python3-h2 with hand-made (masked) WebSocket frames; the backends are
python3-websockets servers (harness.Backend).
"""

import asyncio
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

ENABLE_CONNECT_PROTOCOL = 0x8


class ExtendedConnectTls(h.GatewayCase):
    tls = True

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self._certdir = tempfile.TemporaryDirectory(prefix="wsgate-h2-")
        self.addCleanup(self._certdir.cleanup)
        self.cert = c.make_certificate(self._certdir.name) if self.tls else None

    async def gateway(self, backend, **route):
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                        [{"name": "ws", "path": "/echo", "upstream": "echo", **route}],
                        tls=self.cert, h2c=not self.tls)
        return await self.start_gateway(text)

    async def connect(self, gw) -> c.H2Conn:
        conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=self.tls)
        self.addAsyncCleanup(conn.close)
        if self.tls:
            self.assertEqual(conn.alpn, "h2")
        return conn

    def scheme(self):
        return "https" if self.tls else "http"

    async def open_ws(self, conn, path="/echo", **kw):
        return await c.H2WebSocket.open(conn, path, scheme=self.scheme(), **kw)

    async def test_settings_enable_connect_protocol(self):
        backend = await self.start_backend()
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        settings = await conn.wait_settings()
        self.assertEqual(settings.get(ENABLE_CONNECT_PROTOCOL), 1, settings)  # RFC 8441 3

    async def test_echo_text_binary_fragmented_and_access_log(self):
        backend = await self.start_backend(compression=None)
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        ws = await self.open_ws(conn)
        self.assertEqual(ws.st.status, 200)
        self.assertIsNone(ws.st.header("sec-websocket-accept"))
        await ws.send(h.OP_TEXT, "héllo".encode())
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, "héllo".encode()))
        await ws.send(h.OP_BINARY, bytes(range(256)))
        self.assertEqual(await ws.recv_message(), (h.OP_BINARY, bytes(range(256))))
        # A fragmented message with a ping between the fragments (RFC 6455 5.4, 5.5).
        await ws.send(h.OP_TEXT, b"frag-", fin=False)
        await ws.send(h.OP_PING, b"p")
        await ws.send(h.OP_CONT, b"ment", fin=False)
        await ws.send(h.OP_CONT, b"ed", fin=True)
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"frag-mented"))
        close = await ws.close(1000)
        self.assertEqual(close.close_code, 1000)
        fields = await gw.wait_access_line(lambda f: f.get("proto") == "h2", "an h2 stream")
        self.assertEqual(fields["status"], "200")
        self.assertEqual(fields["route"], "ws")
        self.assertEqual(fields["upstream"], backend.address)
        self.assertEqual(fields["c2u_msgs"], "3")  # data messages; the ping is a control frame
        self.assertEqual(fields["close_code"], "1000")
        if self.tls:
            self.assertIn("tls", fields)
        conns = await backend.wait_conns(1)
        self.assertEqual(conns[0].messages, ["héllo", bytes(range(256)), "frag-mented"])

    async def test_sixteen_mib_message(self):
        backend = await self.start_backend(compression=None)
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        ws = await self.open_ws(conn)
        payload = os.urandom(16 * 1024 * 1024 - 64)
        await ws.send(h.OP_BINARY, payload)
        opcode, got = await ws.recv_message(timeout=120)
        self.assertEqual(opcode, h.OP_BINARY)
        self.assertEqual(len(got), len(payload))
        self.assertTrue(got == payload, "16 MiB message came back different")

    async def test_two_streams_on_one_connection_are_independent(self):
        backend = await self.start_backend(compression=None)
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        a = await self.open_ws(conn)
        b = await self.open_ws(conn)
        self.assertNotEqual(a.st.id, b.st.id)
        await a.send(h.OP_TEXT, b"to-a")
        await b.send(h.OP_TEXT, b"to-b")
        self.assertEqual(await b.recv_message(), (h.OP_TEXT, b"to-b"))
        self.assertEqual(await a.recv_message(), (h.OP_TEXT, b"to-a"))
        # Each stream has its own backend connection; closing one leaves the other.
        conns = await backend.wait_conns(2)
        await a.close(1000)
        await b.send(h.OP_TEXT, b"still-b")
        self.assertEqual(await b.recv_message(), (h.OP_TEXT, b"still-b"))
        await backend.wait_done(conns[0] if conns[0].messages == ["to-a"] else conns[1])
        self.assertEqual(sorted(x.messages[0] for x in conns), ["to-a", "to-b"])

    async def test_subprotocol_negotiated_end_to_end(self):
        backend = await self.start_backend(subprotocols=["v2.chat"])
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        ws = await self.open_ws(conn, extra=[("sec-websocket-protocol", "v9.chat, v2.chat"),
                                             ("origin", "https://app.example")])
        self.assertEqual(ws.st.header("sec-websocket-protocol"), "v2.chat")
        conns = await backend.wait_conns(1)
        self.assertEqual(conns[0].subprotocol, "v2.chat")
        self.assertEqual(conns[0].header("Origin"), "https://app.example")
        # The backend got the gateway's own key (RFC 8441 5: none comes from the client).
        self.assertIsNotNone(conns[0].header("Sec-WebSocket-Key"))
        self.assertEqual(conns[0].header("Host"), "127.0.0.1")
        await ws.send(h.OP_TEXT, b"sub")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"sub"))
        await ws.close(1000)
        # The access line of an h2 stream carries the same request fields as HTTP/1.1's.
        fields = await gw.wait_access_line(lambda f: f.get("proto") == "h2", "an h2 stream")
        self.assertEqual(fields["subprotocol"], "v2.chat")
        self.assertEqual(fields["origin"], "https://app.example")
        self.assertEqual(fields["host"], "127.0.0.1")
        self.assertEqual(conns[0].header("X-Request-Id"), fields["request_id"])

    async def test_permessage_deflate_negotiated(self):
        backend = await self.start_backend(compression="deflate")
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        ws = await self.open_ws(conn, extra=[("sec-websocket-extensions", "permessage-deflate")])
        self.assertIn("permessage-deflate", ws.st.header("sec-websocket-extensions") or "")

    async def expect_refusal(self, conn, headers, status, reason_part):
        st = await conn.request(headers)
        await conn.response(st)
        self.assertEqual(st.status, status, f"{headers}: {st.headers} reset={st.reset}")
        await conn.wait_for(lambda: st.ended or st.reset is not None, 10, "the body")
        body = bytes(st.body).decode()
        self.assertIn(reason_part, body)
        self.assertLess(len(body), 1024)
        return st

    async def test_refusals_get_a_status_and_a_reason(self):
        backend = await self.start_backend()
        gw = await self.gateway(backend, allowed_origins=["https://good.example"],
                                websocket_only=True)
        conn = await self.connect(gw)
        s = self.scheme()
        await self.expect_refusal(conn, c.connect_headers(scheme=s, protocol="connect-udp"), 501,
                                  "unsupported :protocol")
        await self.expect_refusal(conn, c.connect_headers(scheme=s, omit=[":path"]), 400,
                                  "missing :path")
        await self.expect_refusal(conn, c.connect_headers(scheme=s, omit=[":authority"]), 400,
                                  "missing :authority")
        await self.expect_refusal(conn, c.connect_headers(scheme=s, omit=[":scheme"]), 400,
                                  "missing :scheme")
        # Without :protocol it is a plain CONNECT, which has no :scheme or :path.
        await self.expect_refusal(conn, c.connect_headers(scheme=s, omit=[":protocol"]), 400,
                                  "CONNECT with :scheme or :path (RFC 9113 8.5)")
        await self.expect_refusal(conn, [(":method", "GET"), (":scheme", s), (":path", "/echo"),
                                         (":authority", "127.0.0.1")], 426, "WebSocket only")
        # The same rules as HTTP/1.1, from the same code: routing, version, Origin policy.
        await self.expect_refusal(conn, c.connect_headers("/nowhere", scheme=s), 404, "no route")
        await self.expect_refusal(
            conn, c.connect_headers(scheme=s, omit=["sec-websocket-version"]), 426, "ersion")
        await self.expect_refusal(
            conn, c.connect_headers(scheme=s, extra=[("origin", "https://evil.example")]), 403,
            "rigin")
        self.assertEqual(backend.requests, [], "no refused request may reach the backend")
        # The connection still works after all that.
        ws = await self.open_ws(conn, extra=[("origin", "https://good.example")])
        await ws.send(h.OP_TEXT, b"ok")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"ok"))
        fields = await gw.wait_access_line(lambda f: f.get("status") == "501", "the 501")
        self.assertEqual(fields["proto"], "h2")

    async def test_backend_refusal_keeps_its_status_and_body(self):
        backend = await self.start_backend(process_request=h.reject_request(401, b"who are you\n"))
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        st = await self.expect_refusal(conn, c.connect_headers(scheme=self.scheme()), 401,
                                       "who are you")
        self.assertEqual(st.header("x-backend-reject"), "401")

    async def test_http1_still_served(self):
        backend = await self.start_backend()
        gw = await self.gateway(backend)
        if self.tls:
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            url = f"wss://127.0.0.1:{gw.port}/echo"
            async with h.websockets.connect(url, ssl=ctx, open_timeout=h.OPEN_TIMEOUT) as ws:
                await ws.send("h1")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "h1")
        else:
            async with h.ws_connect(gw.port) as ws:
                await ws.send("h1")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "h1")
        fields = await gw.wait_access_line(lambda f: f.get("status") == "101", "the h1 line")
        self.assertEqual(fields["proto"], "http/1.1")


class ExtendedConnectH2c(ExtendedConnectTls):
    tls = False


if __name__ == "__main__":
    h.main()
