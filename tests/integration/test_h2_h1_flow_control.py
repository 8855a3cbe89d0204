"""HTTP/2 client -> HTTP/1.1 backend: stream lifecycle and flow control as backpressure.

- RST_STREAM from the client closes that stream's backend connection (Close 1001) and
  nothing else;
- a stream whose reader stops (no WINDOW_UPDATE for it) does not block a sibling, and
  its backend is slowed down (bounded buffering), then resumes;
- a backend that stops reading stops the client's send window for that stream only;
- a backend that vanishes without a Close ends the stream with RST_STREAM(CANCEL) after
  the gateway's Close 1011.
Runs over h2c (prior knowledge); the TLS path is covered by test_h2_h1_extended_connect.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

CANCEL = 0x8


async def silent_handler(ws, rec):
    """Accepts and never reads (websockets stops reading TCP once its queue is full)."""
    await asyncio.sleep(60)


class FlowControl(h.GatewayCase):
    async def gateway(self, routes: dict):
        """routes: {path: backend}."""
        port = h.free_port()
        ups = {f"u{i}": [b.address] for i, b in enumerate(routes.values())}
        rts = [{"path": p, "upstream": f"u{i}"} for i, p in enumerate(routes)]
        return await self.start_gateway(c.config(f"127.0.0.1:{port}", ups, rts, h2c=True))

    async def connect(self, gw):
        conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=False)
        self.addAsyncCleanup(conn.close)
        return conn

    async def echo_ok(self, ws, text: bytes):
        await ws.send(h.OP_TEXT, text)
        self.assertEqual(await ws.recv_message(timeout=10), (h.OP_TEXT, text))

    async def test_rst_stream_closes_the_backend_connection(self):
        backend = await self.start_backend(compression=None)
        gw = await self.gateway({"/echo": backend})
        conn = await self.connect(gw)
        a = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        b = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        await self.echo_ok(a, b"a1")
        await self.echo_ok(b, b"b1")
        conns = await backend.wait_conns(2)
        rec_a = next(x for x in conns if x.messages == ["a1"])
        await conn.reset(a.st, CANCEL)
        await backend.wait_done(rec_a)
        self.assertEqual(rec_a.close_code, 1001, "the backend is told the client went away")
        await self.echo_ok(b, b"b2")  # the sibling is untouched
        rec_b = next(x for x in conns if x is not rec_a)
        self.assertFalse(rec_b.done.is_set())
        fields = await gw.wait_access_line(lambda f: f.get("c2u_msgs") == "1", "stream a")
        self.assertEqual(fields["proto"], "h2")

    async def test_stalled_reader_does_not_block_sibling(self):
        pusher = await self.start_backend(h.push_handler(512 * 1024 * 1024), compression=None)
        echo = await self.start_backend(compression=None)
        gw = await self.gateway({"/push": pusher, "/echo": echo})
        conn = await self.connect(gw)
        slow = await c.H2WebSocket.open(conn, "/push", scheme="http")
        slow.st.paused = True  # this reader stops: no WINDOW_UPDATE for its stream
        fast = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        rec = (await pusher.wait_conns(1))[0]
        # The pusher fills what the gateway buffers for the stalled stream, then stalls.
        deadline = time.monotonic() + 20
        last, stable_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            await self.echo_ok(fast, b"tick")  # the sibling keeps working meanwhile
            if rec.sent_bytes != last:
                last, stable_since = rec.sent_bytes, time.monotonic()
            elif time.monotonic() - stable_since > 1.0:
                break
            await asyncio.sleep(0.05)
        self.assertLess(time.monotonic(), deadline, "the pusher never stalled")
        self.assertLess(rec.sent_bytes, 64 * 1024 * 1024,
                        f"buffered too much for a stalled stream: {rec.sent_bytes}")
        for i in range(20):
            await self.echo_ok(fast, f"m{i}".encode())
        # The reader reads again: the stream (and its backend) moves on.
        stalled_at = rec.sent_bytes
        await conn.resume(slow.st)
        got = 0
        deadline = time.monotonic() + 20
        while rec.sent_bytes < stalled_at + 4 * 1024 * 1024 and time.monotonic() < deadline:
            opcode, payload = await slow.recv_message()
            self.assertEqual(opcode, h.OP_BINARY)
            got += len(payload)
        self.assertGreater(rec.sent_bytes, stalled_at + 4 * 1024 * 1024, "no progress after resume")

    async def test_backend_that_stops_reading_stops_the_client_window(self):
        silent = await self.start_backend(silent_handler, compression=None, max_queue=1)
        echo = await self.start_backend(compression=None)
        gw = await self.gateway({"/silent": silent, "/echo": echo})
        conn = await self.connect(gw)
        stuck = await c.H2WebSocket.open(conn, "/silent", scheme="http")
        fast = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        chunk = os.urandom(1024 * 1024)
        sent = 0
        frame = h.encode_frame(h.OP_BINARY, chunk)
        with self.assertRaises(AssertionError, msg="the send window never closed"):
            for _ in range(256):
                await conn.send_data(stuck.st, frame, timeout=2)
                sent += len(chunk)
        self.assertEqual(conn.send_window(stuck.st), 0)
        self.assertLess(sent, 64 * 1024 * 1024, f"accepted {sent} bytes for a stuck backend")
        await self.echo_ok(fast, b"sibling still flows")
        self.assertGreater(conn.conn.outbound_flow_control_window, 0,
                           "the connection window must not be used up by one stream")

    async def test_backend_vanishing_resets_the_stream_with_cancel(self):
        # A scripted backend: 101 with the right accept, one frame, then TCP FIN, no Close.
        class Vanishing:
            def __init__(self):
                self.server = None

            async def on_conn(self, reader, writer):
                head = b""
                while b"\r\n\r\n" not in head:
                    data = await reader.read(4096)
                    if not data:
                        return
                    head += data
                key = [ln.split(b":", 1)[1].strip().decode() for ln in head.split(b"\r\n")
                       if ln.lower().startswith(b"sec-websocket-key:")][0]
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                             + h.accept_for(key).encode() + b"\r\n\r\n"
                             + h.encode_frame(h.OP_TEXT, b"bye", mask=False))
                await writer.drain()
                writer.close()

        v = Vanishing()
        server = await asyncio.start_server(v.on_conn, "127.0.0.1", 0)
        self.addAsyncCleanup(server.wait_closed)
        self.addCleanup(server.close)

        class Addr:
            address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        gw = await self.gateway({"/gone": Addr()})
        conn = await self.connect(gw)
        ws = await c.H2WebSocket.open(conn, "/gone", scheme="http")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"bye"))
        close = await ws.recv_frame()
        self.assertEqual(close.close_code, 1011)  # upstream connection lost
        await ws.send(h.OP_CLOSE, h.close_payload(1011))  # our reply ends the relay
        await conn.wait_for(lambda: ws.st.reset is not None or ws.st.ended, 15, "stream end")
        self.assertEqual(ws.st.reset, CANCEL, f"ended={ws.st.ended}")


if __name__ == "__main__":
    h.main()
