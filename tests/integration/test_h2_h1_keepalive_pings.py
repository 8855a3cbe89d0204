"""HTTP/2 client -> HTTP/1.1 backend: the gateway's keepalive pings on an RFC 8441
WebSocket stream. A stream feeds the same WebSocket exchange and Relay as an HTTP/1.1 connection, so the
stream gets the gateway's Pings; a stream that answers them stays open past the idle
timeout, the Pongs never reach the backend; once it stops answering, the stream's relay
ends (the backend gets 1001 "client ping timeout") while the HTTP/2 connection and its
other streams go on.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

GATEWAY_PING_TAG = b"wsgp"


class H2Pings(h.GatewayCase):
    async def test_h2_stream_answers_pings_then_goes_silent(self):
        backend = await self.start_backend(compression=None)
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                        [{"path": "/echo", "upstream": "echo", "idle_timeout": "1500ms",
                          "ping_interval": "300ms", "ping_timeout": "700ms",
                          "ping_to": "client"}], h2c=True)
        gw = await self.start_gateway(text)
        conn = await c.H2Conn.open("127.0.0.1", port, tls=False)
        self.addAsyncCleanup(conn.close)
        ws = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        other = await c.H2WebSocket.open(conn, "/echo", scheme="http")

        # Answer every Ping on `ws` for 3 s (two idle timeouts); `other` answers too.
        answered = 0
        deadline = time.monotonic() + 3.0
        for _ in range(200):
            if time.monotonic() >= deadline:
                break
            for stream in (ws, other):
                try:
                    f = await stream.recv_frame(timeout=0.2)
                except AssertionError:
                    continue
                self.assertEqual(f.opcode, h.OP_PING, f)
                self.assertTrue(f.payload.startswith(GATEWAY_PING_TAG), f)
                await stream.send(h.OP_PONG, f.payload)
                answered += stream is ws
        self.assertGreaterEqual(answered, 5)
        await ws.send(h.OP_TEXT, b"alive")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"alive"))

        # `ws` stops answering: its relay ends after ping_timeout; `other` keeps
        # answering (read on the same connection) and goes on.
        silent_since = time.monotonic()
        recs = await backend.wait_conns(2)
        rec = next(r for r in recs if r.messages == ["alive"])
        for _ in range(500):
            if rec.done.is_set() or time.monotonic() - silent_since > 10:
                break
            try:
                f = await other.recv_frame(timeout=0.1)
            except AssertionError:
                continue
            if f.opcode == h.OP_PING:
                await other.send(h.OP_PONG, f.payload)
        self.assertTrue(rec.done.is_set(), "the silent stream's backend connection is still open")
        took = time.monotonic() - silent_since
        self.assertEqual((rec.close_code, rec.close_reason), (1001, "client ping timeout"))
        self.assertLess(took, 4.0)
        await other.send(h.OP_TEXT, b"other")
        self.assertEqual(await other.recv_message(), (h.OP_TEXT, b"other"))
        # The gateway's Pongs were consumed: the one message is all that went upstream
        # (websockets would not show a stray Pong; the counters do).
        line = await gw.wait_access_line(
            lambda f: f.get("reason") == "client ping timeout", "the silent stream's line")
        self.assertEqual((line["close_code"], line["closed_by"], line["proto"]),
                         ("1006", "client", "h2"), line)
        self.assertEqual(line["c2u_msgs"], "1", line)
        self.assertEqual(line["c2u_bytes"], str(6 + len(b"alive")), line)
        self.assertGreater(int(line["client_ping_rtt_us"]), 0, line)


if __name__ == "__main__":
    h.main()
