"""HTTP/2 client -> HTTP/1.1 backend over TLS (ALPN h2): the deadlines and bounds that
keep a hostile HTTP/2 client from holding the gateway (issue 14 items 2, 3).

- a connection that sends its preface and nothing else is closed (GOAWAY) after the
  listener's handshake_timeout, as an HTTP/1.1 connection gets 408;
- a stream whose client keeps its window at 0 is reset (RST_STREAM CANCEL) after
  http2_send_timeout, and its backend gets Close 1001;
- streams opened faster than the per-connection rate get RST_STREAM(REFUSED_STREAM).

The session-level unit tests (tests/gateway/h2_session_test.cc) cover the same over h2c
with an nghttp2 client, plus the closing deadline and CONTINUATION; these check the
real binary with an independent client (python3-h2).
"""

import asyncio
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

CANCEL = 0x8
REFUSED_STREAM = 0x7
INITIAL_WINDOW_SIZE = 0x4


class H2Deadlines(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self._certdir = tempfile.TemporaryDirectory(prefix="wsgate-h2-")
        self.addCleanup(self._certdir.cleanup)
        self.cert = c.make_certificate(self._certdir.name)

    async def gateway(self, backend, admin_port: int = 0):
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"app": [backend.address]},
                        [{"name": "ws", "path": "/echo", "upstream": "app"}], tls=self.cert)
        text = text.replace("[listener.tls]", 'handshake_timeout = "1s"\n'
                            'http2_send_timeout = "1s"\n[listener.tls]', 1)
        if admin_port:
            text = ac.with_admin(text, admin_port)
        return await self.start_gateway(text)

    async def connect(self, gw) -> c.H2Conn:
        conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=True)
        self.addAsyncCleanup(conn.close)
        self.assertEqual(conn.alpn, "h2")
        await conn.wait_settings()
        return conn

    async def test_connection_without_a_request_is_closed_after_handshake_timeout(self):
        backend = await self.start_backend()
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        start = time.monotonic()
        await conn.wait_for(lambda: conn.closed, 10, "the gateway to close the connection")
        self.assertLess(time.monotonic() - start, 8)
        self.assertIsNotNone(conn.terminated, "GOAWAY before the close")
        self.assertEqual(int(conn.terminated.error_code), 0)

    async def test_stream_with_a_closed_window_is_reset_after_http2_send_timeout(self):
        backend = await self.start_backend(h.push_handler(1024 * 1024), compression=None)
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        # RFC 9113 6.9.2: every stream starts with no window, and this client never
        # gives one.
        conn.conn.update_settings({INITIAL_WINDOW_SIZE: 0})
        await conn.flush()
        st = await conn.request(c.connect_headers("/echo", scheme="https"))
        await conn.response(st)
        self.assertEqual(st.status, 200)
        await conn.wait_for(lambda: st.reset is not None, 10, "RST_STREAM")
        self.assertEqual(st.reset, CANCEL)
        self.assertEqual(len(st.body), 0)
        rec = (await backend.wait_conns(1))[0]
        await backend.wait_done(rec)
        self.assertEqual(rec.close_code, 1001, "the backend is told the client went away")
        self.assertFalse(conn.closed, "only the stream ends")

    async def test_streams_reset_before_their_answer_are_rate_limited(self):
        backend = await self.start_backend()
        admin_port = h.free_port()
        gw = await self.gateway(backend, admin_port=admin_port)
        conn = await self.connect(gw)
        # Rapid reset (CVE-2023-44487): 150 streams, each reset right after its HEADERS.
        # The gateway takes a burst of 100; a reset stream never gives its token back, so
        # the rest are refused (RST_STREAM(REFUSED_STREAM), counted) unless the refill of
        # 20 a second caught up with a slow sender.
        # HEADERS and RST_STREAM go out together, as an attacker sends them.
        for _ in range(150):
            sid = conn.conn.get_next_available_stream_id()
            conn.conn.send_headers(sid, c.connect_headers("/nope", scheme="https"))
            conn.conn.reset_stream(sid, error_code=8)  # CANCEL
        await conn.flush()
        admin = ac.Admin(admin_port)

        async def refused():
            m = await admin.metrics()
            return m.value("wsgate_limit_rejections_total", limit="h2_stream_rate")
        deadline = time.monotonic() + 20
        while await refused() == 0 and time.monotonic() < deadline:
            await asyncio.sleep(h.POLL_INTERVAL)
        self.assertGreater(await refused(), 0)
        self.assertLessEqual(await refused(), 50)
        self.assertFalse(conn.closed)

    async def test_streams_answered_whole_are_not_rate_limited(self):
        backend = await self.start_backend()
        gw = await self.gateway(backend)
        conn = await self.connect(gw)
        # 300 requests, 100 at a time (MAX_CONCURRENT_STREAMS), far above the burst and
        # its refill: each stream answered whole (404: no route) gives its token back.
        for _ in range(3):
            streams = []
            for _ in range(100):
                streams.append(await conn.request(c.connect_headers("/nope", scheme="https")))
            await conn.wait_for(lambda: all(s.status or s.reset is not None for s in streams),
                                20, "answers to 100 streams")
            self.assertEqual([s.status for s in streams], [404] * 100)
        self.assertFalse(conn.closed)

if __name__ == "__main__":
    h.main()
