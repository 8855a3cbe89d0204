"""HTTP/1.1 client -> HTTP/1.1 backend: interim (1xx) responses before the backend's 101.

RFC 9110 15.2: a client must parse and ignore 1xx responses other than 101 and wait for
the final answer. The gateway is the backend's client: a `103 Early Hints` (or
`100 Continue`) before the 101 must not be taken for the answer, and the 101 and the
frames after it must not reach the client as raw bytes. A backend that sends only 1xx
responses gets a 502 once it is past the bound, not an endless wait.
"""

import asyncio
import os
import struct
import sys
import time


sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class ScriptedUpstream:
    """A hand-written WebSocket backend: answers the upgrade with `interim` 1xx heads
    (all in one write with the 101 unless `split`), then a 101, then greets the client
    and echoes text frames. `final=None` sends only the interim heads."""

    def __init__(self, interim: list, *, final: bool = True, split: bool = False):
        self.interim = interim
        self.final = final
        self.split = split
        self.requests = []
        self.accepted = 0

    async def _read_frame(self, reader):
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
        data = await reader.readexactly(n)
        return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))

    @staticmethod
    def _frame(opcode: int, payload: bytes) -> bytes:
        assert len(payload) < 126
        return bytes([0x80 | opcode, len(payload)]) + payload

    async def _on_conn(self, reader, writer):
        self.accepted += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            self.requests.append(head)
            key = b""
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            for interim in self.interim:
                writer.write(interim)
                if self.split:
                    await writer.drain()
            if not self.final:
                await writer.drain()
                await asyncio.wait_for(reader.read(1), 30)  # until the gateway gives up
                return
            accept = h.accept_for(key.decode()).encode()
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                         b"\r\n\r\n" + self._frame(0x1, b"hello from upstream"))
            await writer.drain()
            while True:
                opcode, payload = await asyncio.wait_for(self._read_frame(reader), 30)
                if opcode == 0x8:
                    writer.write(self._frame(0x8, payload[:2]))
                    await writer.drain()
                    return
                writer.write(self._frame(opcode, payload))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aexit__(self, *exc):
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 10)
        except asyncio.TimeoutError:
            pass


EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\n\r\n"


class InterimResponses(h.GatewayCase):
    async def open_and_echo(self, upstream: ScriptedUpstream) -> None:
        gw = await self.start_gateway(h.simple_config(h.free_port(), [upstream.address]))
        async with h.ws_connect(gw.port) as ws:
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hello from upstream")
            await ws.send("ping through")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "ping through")
        self.assertEqual(len(upstream.requests), 1)
        await gw.stop_async()

    async def test_h1_h1_103_early_hints_before_101(self):
        async with ScriptedUpstream([EARLY_HINTS]) as upstream:
            await self.open_and_echo(upstream)

    async def test_h1_h1_several_interim_responses_split_before_101(self):
        interim = [b"HTTP/1.1 100 Continue\r\n\r\n",
                   b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n",
                   b"HTTP/1.1 102 Processing\r\n\r\n"]
        for split in (False, True):
            with self.subTest(split=split):
                async with ScriptedUpstream(interim, split=split) as upstream:
                    await self.open_and_echo(upstream)

    async def test_h1_h1_raw_client_sees_only_the_101(self):
        # The client must get the 101 as the first bytes, then frames; never the 103.
        async with ScriptedUpstream([EARLY_HINTS]) as upstream:
            gw = await self.start_gateway(h.simple_config(h.free_port(), [upstream.address]))
            ws = await h.RawWebSocket.connect("127.0.0.1", gw.port)
            async with ws:
                self.assertTrue(ws.response.raw.startswith(b"HTTP/1.1 101 "),
                                ws.response.raw[:200])
                frame = await ws.recv_frame(10)
                self.assertIsNotNone(frame)
                self.assertEqual((frame.opcode, frame.payload),
                                 (h.OP_TEXT, b"hello from upstream"))
            await gw.stop_async()

    async def test_h1_h1_interim_flood_502(self):
        flood = [EARLY_HINTS] * 50
        async with ScriptedUpstream(flood, final=False) as upstream:
            gw = await self.start_gateway(h.simple_config(
                h.free_port(), [upstream.address], route={"upstream_handshake_timeout": "20s"}))
            started = time.monotonic()
            resp = await h.http_exchange("127.0.0.1", gw.port,
                                         h.upgrade_request("/echo", "127.0.0.1"), timeout=20)
            h.assert_error_response(self, resp, 502, "1xx flood")
            self.assertIn(b"interim (1xx) responses", resp.body)
            # Refused on the count, not after the 20 s handshake timeout.
            self.assertLess(time.monotonic() - started, 10)
            await gw.stop_async()


if __name__ == "__main__":
    h.main()
