"""Keepalive pings from the gateway (route ping_interval / ping_timeout / ping_to).

A client that answers the gateway's pings stays connected past the route's idle timeout;
one that stops answering is dropped after ping_timeout (no close handshake with it, the
backend gets 1001), and so is a backend that stops answering (the client gets 1001), but
a client that reads slowly is not taken for dead while its Ping waits behind data (and a
wss:// client is kept alive through TLS the same way); the Pongs that answer gateway pings never reach the other side, and
pings toward the backend are masked (RFC 6455 5.3). Peers: python3-websockets 10.4 (its
own keepalive off, so the only pings on the wire are the gateway's), and raw sockets for
a client that never answers and a backend that records every frame it receives.
"""

import asyncio
import base64
import hashlib
import os
import struct
import sys
import time

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

GATEWAY_PING_TAG = b"wsgp"  # the gateway's own Ping payloads start with it


class RecordingBackend:
    """A WebSocket server written on raw asyncio streams: it completes the handshake,
    records every frame it receives (masked flag, opcode, unmasked payload), answers
    every Ping with a Pong carrying the same payload (RFC 6455 5.5.3) unless told not
    to, echoes text and binary frames, and answers a Close with a Close."""

    def __init__(self, answer_pings: bool = True):
        self.answer_pings = answer_pings
        self.frames: list[h.Frame] = []
        self.writers = []
        self.closed = asyncio.Event()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aexit__(self, *exc):
        for w in self.writers:
            w.close()
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 10)
        except asyncio.TimeoutError:
            pass

    async def _on_conn(self, reader, writer):
        self.writers.append(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            key = ""
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1((key + h.WS_GUID).encode()).digest())
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                         b"\r\n\r\n")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                frame = await self._read_frame(reader)
                self.frames.append(frame)
                if frame.opcode == h.OP_PING and self.answer_pings:
                    writer.write(h.encode_frame(h.OP_PONG, frame.payload, mask=False))
                elif frame.opcode in (h.OP_TEXT, h.OP_BINARY):
                    writer.write(h.encode_frame(frame.opcode, frame.payload, mask=False))
                elif frame.opcode == h.OP_CLOSE:
                    writer.write(h.encode_frame(h.OP_CLOSE, frame.payload[:2], mask=False))
                    await writer.drain()
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self.closed.set()
            writer.close()

    @staticmethod
    async def _read_frame(reader) -> h.Frame:
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        masked = bool(b1 & 0x80)
        key = await reader.readexactly(4) if masked else b""
        payload = await reader.readexactly(n)
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return h.Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)


def ping_route(**keys) -> dict:
    return {"idle_timeout": "2s", "ping_interval": "500ms", "ping_timeout": "1s", **keys}


class AnsweringClientStays(h.GatewayCase):
    async def test_answering_client_outlives_the_idle_timeout_and_has_a_ping_rtt(self):
        backend = await self.start_backend(compression=None)
        admin_port = h.free_port()
        gw = await self.start_gateway(ac.with_admin(
            h.simple_config(h.free_port(), [backend.address], route=ping_route()), admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        # websockets answers every Ping with a Pong by itself; its own pings are off.
        async with h.ws_connect(gw.port, compression=None) as ws:
            await ws.send("first")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "first")
            started = time.monotonic()
            await asyncio.sleep(5.0)  # 2.5 idle timeouts without a single message
            self.assertIsNone(ws.close_code, "the gateway closed an answering client")
            await ws.send("still here")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "still here")
            self.assertGreaterEqual(time.monotonic() - started, 5.0)
            rows = (await admin.connections())["connections"]
            self.assertEqual(len(rows), 1, rows)
            pings = rows[0]["pings"]
            for side in ("client", "upstream"):
                # About one ping per 500 ms for 5 s, each answered.
                self.assertGreaterEqual(pings[side]["sent"], 6, pings)
                self.assertGreaterEqual(pings[side]["answered"], pings[side]["sent"] - 1, pings)
                self.assertGreater(pings[side]["last_rtt_ms"], 0, pings)
                self.assertLess(pings[side]["max_rtt_ms"], 2000, pings)
            # The pongs were consumed by the gateway: none crossed to the other side.
            self.assertEqual(rows[0]["client_to_upstream"]["pongs"], 0, rows[0])
            self.assertEqual(rows[0]["upstream_to_client"]["pongs"], 0, rows[0])
        rec = (await backend.wait_conns(1))[0]
        await backend.wait_done(rec)
        self.assertEqual(rec.messages, ["first", "still here"])
        line = await gw.wait_access_line(lambda f: f.get("route") == "*/echo", "the connection")
        self.assertGreater(int(line["client_ping_rtt_us"]), 0, line)
        self.assertGreater(int(line["upstream_ping_rtt_us"]), 0, line)


class SilentClientDropped(h.GatewayCase):
    async def test_client_that_never_answers_is_dropped_after_ping_timeout(self):
        backend = await self.start_backend(compression=None)
        admin_port = h.free_port()
        gw = await self.start_gateway(ac.with_admin(h.simple_config(
            h.free_port(), [backend.address],
            route=ping_route(idle_timeout="20s", ping_to="client")), admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        async with await h.RawWebSocket.connect("127.0.0.1", gw.port) as raw:
            opened = time.monotonic()
            # It reads what comes but never answers: a Ping, then the connection ends
            # without a Close (the peer is taken for dead, RFC 6455 7.1.5 / 1006).
            ping = await raw.recv_frame(timeout=5)
            self.assertIsNotNone(ping)
            self.assertEqual(ping.opcode, h.OP_PING)
            self.assertFalse(ping.masked, "RFC 6455 5.1: frames to a client are not masked")
            self.assertTrue(ping.payload.startswith(GATEWAY_PING_TAG), ping.payload)
            seen = [ping]
            for _ in range(100):
                frame = await raw.recv_frame(timeout=10)
                if frame is None:
                    break
                seen.append(frame)
            else:
                self.fail(f"the connection did not end: {seen!r}")
            took = time.monotonic() - opened
        self.assertNotIn(h.OP_CLOSE, [f.opcode for f in seen], seen)
        # One ping (500 ms after the upgrade), its 1 s deadline, then the drop.
        self.assertGreaterEqual(took, 1.3, "dropped before ping_interval + ping_timeout")
        self.assertLess(took, 4.0, "not dropped within ping_interval + ping_timeout + slack")
        rec = (await backend.wait_conns(1))[0]
        await backend.wait_done(rec)
        self.assertEqual((rec.close_code, rec.close_reason), (1001, "client ping timeout"))
        line = await gw.wait_access_line(lambda f: f.get("route") == "*/echo", "the connection")
        self.assertEqual((line["close_code"], line["closed_by"], line["reason"]),
                         ("1006", "client", "client ping timeout"), line)
        metrics = await admin.metrics()
        self.assertEqual(metrics.value("wsgate_ping_timeouts_total", side="client"), 1)
        self.assertEqual(metrics.value("wsgate_ping_timeouts_total", side="upstream"), 0)


class SilentBackendDropped(h.GatewayCase):
    async def test_backend_that_never_answers_is_dropped_and_the_client_gets_1001(self):
        async with RecordingBackend(answer_pings=False) as backend:
            admin_port = h.free_port()
            gw = await self.start_gateway(ac.with_admin(h.simple_config(
                h.free_port(), [backend.address],
                route=ping_route(idle_timeout="20s", ping_to="upstream")), admin_port))
            admin = ac.Admin(admin_port)
            await admin.wait_up()
            async with h.ws_connect(gw.port, compression=None) as ws:
                opened = time.monotonic()
                await ws.send("hello")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hello")
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), 10)
                took = time.monotonic() - opened
            self.assertIsNotNone(cm.exception.rcvd, "the client got no Close frame")
            self.assertEqual((cm.exception.rcvd.code, cm.exception.rcvd.reason),
                             (1001, "upstream ping timeout"))
            self.assertGreaterEqual(took, 1.3, "dropped before ping_interval + ping_timeout")
            self.assertLess(took, 4.0, "not dropped within ping_interval + ping_timeout + slack")
            # The backend saw masked gateway pings and no Close (it was taken for dead).
            await asyncio.wait_for(backend.closed.wait(), 10)
            opcodes = [f.opcode for f in backend.frames]
            self.assertIn(h.OP_PING, opcodes, backend.frames)
            self.assertNotIn(h.OP_CLOSE, opcodes, backend.frames)
            self.assertTrue(all(f.masked for f in backend.frames), backend.frames)
        line = await gw.wait_access_line(lambda f: f.get("route") == "*/echo", "the connection")
        self.assertEqual((line["close_code"], line["closed_by"], line["reason"]),
                         ("1006", "upstream", "upstream ping timeout"), line)
        metrics = await admin.metrics()
        self.assertEqual(metrics.value("wsgate_ping_timeouts_total", side="upstream"), 1)
        self.assertEqual(metrics.value("wsgate_ping_timeouts_total", side="client"), 0)


class PongsStayInTheGateway(h.GatewayCase):
    async def test_gateway_pongs_never_cross_and_backend_pings_are_masked(self):
        async with RecordingBackend() as backend:
            admin_port = h.free_port()
            gw = await self.start_gateway(ac.with_admin(h.simple_config(
                h.free_port(), [backend.address], route=ping_route(ping_to="both")),
                admin_port))
            admin = ac.Admin(admin_port)
            await admin.wait_up()
            async with await h.RawWebSocket.connect("127.0.0.1", gw.port) as raw:
                # The client answers every Ping (the gateway's and the backend's alike)
                # and sends one Ping of its own, for 3 s.
                at_client = []
                await raw.send_frame(h.OP_PING, b"app ping")
                deadline = time.monotonic() + 3.0
                for _ in range(1000):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        frame = await raw.recv_frame(timeout=left)
                    except AssertionError:
                        break  # no more frames before the deadline
                    self.assertIsNotNone(frame, f"connection ended early: {at_client!r}")
                    at_client.append(frame)
                    if frame.opcode == h.OP_PING:
                        await raw.send_frame(h.OP_PONG, frame.payload)
                await raw.send_frame(h.OP_TEXT, b"bye")
                # Pings keep coming: answer them until the echo arrives.
                for _ in range(100):
                    echoed = await raw.recv_frame(timeout=10)
                    self.assertIsNotNone(echoed, f"connection ended early: {at_client!r}")
                    at_client.append(echoed)
                    if echoed.opcode != h.OP_PING:
                        break
                    await raw.send_frame(h.OP_PONG, echoed.payload)
                self.assertEqual((echoed.opcode, echoed.payload), (h.OP_TEXT, b"bye"))
                rows = (await admin.connections())["connections"]
                await raw.send_frame(h.OP_CLOSE, h.close_payload(1000))
                await raw.expect_close(timeout=10)
            await asyncio.wait_for(backend.closed.wait(), 10)

        at_backend = backend.frames
        gw_pings_to_backend = [f for f in at_backend if f.opcode == h.OP_PING and
                               f.payload.startswith(GATEWAY_PING_TAG)]
        gw_pings_to_client = [f for f in at_client if f.opcode == h.OP_PING and
                              f.payload.startswith(GATEWAY_PING_TAG)]
        self.assertGreaterEqual(len(gw_pings_to_backend), 4, at_backend)
        self.assertGreaterEqual(len(gw_pings_to_client), 4, at_client)
        # RFC 6455 5.3: toward a server every frame is masked, the gateway's own too.
        self.assertTrue(all(f.masked for f in gw_pings_to_backend), gw_pings_to_backend)
        self.assertFalse(any(f.masked for f in gw_pings_to_client), gw_pings_to_client)
        # The client's Pongs to gateway pings stayed in the gateway ...
        backend_pongs = [f.payload for f in at_backend if f.opcode == h.OP_PONG]
        self.assertEqual(backend_pongs, [], "a Pong for a gateway ping reached the backend")
        # ... and so did the backend's; but the Pong to the client's own Ping and the
        # client's own Ping itself pass untouched (RFC 6455 5.5.3).
        client_pongs = [f.payload for f in at_client if f.opcode == h.OP_PONG]
        self.assertEqual(client_pongs, [b"app ping"])
        self.assertIn(b"app ping", [f.payload for f in at_backend if f.opcode == h.OP_PING])
        self.assertEqual(len(rows), 1, rows)
        pings = rows[0]["pings"]
        self.assertGreater(pings["client"]["last_rtt_ms"], 0, pings)
        self.assertGreater(pings["upstream"]["last_rtt_ms"], 0, pings)


class SlowReaderStays(h.GatewayCase):
    async def test_slow_reader_that_answers_is_not_taken_for_dead(self):
        # The backend pushes 64 KiB messages as fast as the gateway takes them; the client
        # reads about 300 KB/s through a 16 KiB receive buffer and answers every Ping it
        # sees. The gateway's Pings wait behind megabytes in the socket buffers, longer
        # than ping_timeout, but the client keeps taking data: it is alive, not dropped.
        backend = await self.start_backend(h.push_handler(64 * 1024 * 1024), compression=None)
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address],
            route=ping_route(idle_timeout="30s", ping_timeout="2s", ping_to="client")))
        # The premise is a reader that never stops: an attempt in which this (loaded)
        # machine held the client, or the data, for half a ping_timeout or more proves
        # nothing either way and is run again (a CI run once saw the data stop long
        # enough for a 1 s ping_timeout).
        for _ in range(3):
            port, longest_wait = await self.read_slowly(gw.port, seconds=7.0)
            line = await gw.wait_access_line(
                lambda f, port=port: f.get("client", "").endswith(f":{port}"),
                "the connection", timeout=20)
            if longest_wait < 1.0:
                break
        else:
            self.fail(f"every attempt waited {longest_wait:.2f} s or more for data")
        # The connection ended with the client's Close, not by a ping timeout.
        self.assertEqual((line["closed_by"], line["close_code"]), ("client", "1000"), line)
        self.assertNotIn("ping timeout", line.get("reason", ""), line)

    async def read_slowly(self, port: int, seconds: float) -> tuple[int, float]:
        """Reads 16 KiB about every 50 ms for `seconds`, answering Pings, then sends a
        Close and reads the rest at full speed until the gateway closes; returns the
        client's port and the longest wait for data while reading slowly, up to the
        Close (a client held up at the end is a wait too)."""
        async with await h.RawWebSocket.connect("127.0.0.1", port, rcvbuf=16384) as raw:
            started = last_data = time.monotonic()
            longest_wait = 0.0
            for _ in range(1000):
                if time.monotonic() - started >= seconds:
                    break
                chunk = await raw.conn.recv(1.0, 16384)
                self.assertNotEqual(chunk, b"", "the gateway dropped a slow but live reader")
                now = time.monotonic()
                longest_wait = max(longest_wait, now - last_data)
                if chunk:
                    last_data = now
                raw.buf += chunk or b""
                for _ in range(1000):
                    frame = raw._parse_one()
                    if frame is None:
                        break
                    if frame.opcode == h.OP_PING:
                        await raw.send_frame(h.OP_PONG, frame.payload)
                await asyncio.sleep(0.05)
            self.assertGreaterEqual(time.monotonic() - started, seconds)
            longest_wait = max(longest_wait, time.monotonic() - last_data)
            # The client ends the connection itself: its Close (RFC 6455 5.5.1), then what
            # is still queued toward it, read as fast as it comes, until the gateway closes.
            await raw.send_frame(h.OP_CLOSE, h.close_payload(1000))
            _, closed = await raw.conn.read_until_eof(20, limit=1 << 30)
            self.assertTrue(closed, "the connection did not end after the client's Close")
            return raw.conn.local_port, longest_wait


class TlsClientAnswers(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.cert = pki.leaf("a", cls.ca, ["a.test"])

    async def test_wss_client_that_answers_outlives_the_idle_timeout(self):
        # Pings into a TLS stream (the gateway's output goes through OpenSSL's records).
        backend = await self.start_backend(compression=None)
        admin_port = h.free_port()
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                            [{"path": "/echo", "upstream": "echo", **ping_route()}],
                            listener_tls={"certificates": [{"cert": self.cert.cert,
                                                            "key": self.cert.key}]})
        gw = await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        ctx = h.client_ssl_context(self.ca.cert)
        async with h.wss_connect(gw.port, ctx, "a.test", compression=None) as ws:
            await asyncio.sleep(3.0)  # 1.5 idle timeouts without a message
            self.assertIsNone(ws.close_code, "the gateway closed an answering wss client")
            await ws.send("over TLS")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "over TLS")
            rows = (await admin.connections())["connections"]
            self.assertEqual(len(rows), 1, rows)
            self.assertEqual(rows[0]["tls"][:4], "TLSv", rows[0])
            self.assertGreaterEqual(rows[0]["pings"]["client"]["answered"], 3, rows[0])
            self.assertGreater(rows[0]["pings"]["client"]["last_rtt_ms"], 0, rows[0])


if __name__ == "__main__":
    h.main()
