"""HTTP/1.1 client -> HTTP/1.1 backend: the gateway's own closes.

Frame rules (RFC 6455 5.1-5.5) broken by a raw client -> Close 1002; a message over the
route's max_message_size -> Close 1009 to the client, 1001 to the backend; silence
longer than idle_timeout -> Close 1001.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class FrameViolations(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()
        self.gw = await self.start_gateway(h.simple_config(h.free_port(),
                                                           [self.backend.address]))

    async def violation(self, name: str, *frames: bytes) -> None:
        ws = await h.RawWebSocket.connect("127.0.0.1", self.gw.port)
        async with ws:
            # A good message first: proves the relay works and the backend ran.
            await ws.send_frame(h.OP_TEXT, b"good")
            echo = await ws.recv_frame(10)
            self.assertEqual((echo.opcode, echo.payload), (h.OP_TEXT, b"good"), name)
            for f in frames:
                try:
                    await ws.send_raw(f)
                except (BrokenPipeError, ConnectionResetError):
                    break
            close = await ws.expect_close(10)
            self.assertEqual(close.close_code, 1002, f"{name}: close payload {close.payload!r}")
            self.assertFalse(close.masked, f"{name}: server frames must not be masked")
            self.assertTrue(await ws.wait_eof(10), f"{name}: connection not closed after 1002")
        rec = self.backend.conns[-1]
        await self.backend.wait_done(rec)
        self.assertEqual(rec.messages, ["good"], f"{name}: the bad frame reached the backend")
        # The gateway, not the backend, caught it: the backend is told it is going away.
        self.assertEqual(rec.close_code, 1001, f"{name}: backend's close code")

    async def test_unmasked_client_frame_1002(self):
        await self.violation("unmasked", h.encode_frame(h.OP_TEXT, b"hello", mask=False))

    async def test_other_frame_rule_violations_1002(self):
        cases = {
            "RSV1 without a negotiated extension": [h.encode_frame(h.OP_TEXT, b"x", rsv=4)],
            "RSV2 set": [h.encode_frame(h.OP_TEXT, b"x", rsv=2)],
            "reserved opcode 0x3": [h.encode_frame(0x3, b"x")],
            "reserved control opcode 0xB": [h.encode_frame(0xB, b"")],
            "control frame over 125 bytes": [h.encode_frame(h.OP_PING, b"p" * 126)],
            "fragmented control frame": [h.encode_frame(h.OP_PING, b"p", fin=False)],
            "continuation without a start": [h.encode_frame(h.OP_CONT, b"x")],
            "new message inside a fragmented one": [
                h.encode_frame(h.OP_TEXT, b"a", fin=False), h.encode_frame(h.OP_TEXT, b"b")],
            "close with a 1-byte payload": [h.encode_frame(h.OP_CLOSE, b"\x03")],
        }
        # RFC 6455 7.4: codes never sent on the wire, reserved or out of range.
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000):
            cases[f"close code {code}"] = [h.encode_frame(h.OP_CLOSE, h.close_payload(code))]
        for name, frames in cases.items():
            with self.subTest(name):
                await self.violation(name, *frames)


class BackendViolations(h.GatewayCase):
    async def test_masked_frame_from_backend(self):
        # RFC 6455 5.1: a server must not mask. The backend is told 1002, the client 1011.
        async def after_101(reader, writer, seen):
            await asyncio.wait_for(reader.readexactly(2 + 4 + 5), 10)  # client's "hello"
            writer.write(h.encode_frame(h.OP_TEXT, b"masked", mask=True))
            await writer.drain()
            data = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                chunk = await asyncio.wait_for(reader.read(4096), 10)
                if not chunk:
                    break
                data += chunk
            seen["after"] = data

        port, seen = await h.start_scripted_upgrade_backend(self, after_101)
        gw = await self.start_gateway(h.simple_config(h.free_port(), [f"127.0.0.1:{port}"]))
        async with h.ws_connect(gw.port, compression=None) as ws:
            await ws.send("hello")
            await asyncio.wait_for(ws.wait_closed(), 15)
        self.assertEqual(ws.close_code, 1011)
        await h.wait_until(lambda: "after" in seen or "error" in seen, 15, "backend to finish")
        self.assertNotIn("error", seen)
        # The gateway's close to the backend: a masked client-role frame with code 1002.
        after = seen["after"]
        self.assertGreaterEqual(len(after), 8, after)
        self.assertEqual(after[0] & 0x0F, h.OP_CLOSE, after[:16])
        self.assertTrue(after[1] & 0x80, "frames to the backend must be masked")
        key, payload = after[2:6], after[6:6 + (after[1] & 0x7F)]
        code = int.from_bytes(bytes(b ^ key[i % 4] for i, b in enumerate(payload[:2])), "big")
        self.assertEqual(code, 1002)


class MessageTooBig(h.GatewayCase):
    async def test_message_over_max_message_size_1009(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address], route={"max_message_size": "1KiB"}))
        async with h.ws_connect(gw.port, compression=None) as ws:
            exact = b"e" * 1024
            await ws.send(exact)  # exactly the limit is fine
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), exact)
            await ws.send(b"x" * 2048)
            await asyncio.wait_for(ws.wait_closed(), 15)
        self.assertEqual(ws.close_code, 1009)
        rec = backend.conns[0]
        await backend.wait_done(rec)
        self.assertEqual(rec.close_code, 1001, "backend should be told the gateway is going away")
        self.assertEqual(rec.messages, [exact], "the oversized message reached the backend")

    async def test_fragmented_message_over_max_message_size_1009(self):
        backend = await self.start_backend(h.record_handler)
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address], route={"max_message_size": "1KiB"}))

        async def fragments():
            for _ in range(8):
                yield b"f" * 256   # 2 KiB in total, each fragment under the limit

        async with h.ws_connect(gw.port, compression=None) as ws:
            await ws.send(b"ok")
            await backend.wait_conns(1)
            try:
                await ws.send(fragments())
            except Exception:
                pass  # the gateway may close while fragments are still going out
            await asyncio.wait_for(ws.wait_closed(), 15)
        self.assertEqual(ws.close_code, 1009)
        rec = backend.conns[0]
        await backend.wait_done(rec)
        self.assertEqual(rec.close_code, 1001)
        self.assertEqual(rec.messages, [b"ok"])

    async def test_backend_message_over_max_message_size_1009(self):
        async def big_sender(ws, rec):
            await ws.send(b"y" * 4096)
            await ws.wait_closed()

        backend = await self.start_backend(big_sender)
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address], route={"max_message_size": "1KiB"}))
        async with h.ws_connect(gw.port, compression=None) as ws:
            await asyncio.wait_for(ws.wait_closed(), 15)
        rec = backend.conns[0]
        await backend.wait_done(rec)
        self.assertEqual(rec.close_code, 1009, "the backend sent the oversized message")
        # The client did nothing wrong: it is told the server side failed (RFC 6455 7.4.1).
        self.assertEqual(ws.close_code, 1011)


class IdleTimeout(h.GatewayCase):
    async def test_idle_connection_closed_1001(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address], route={"idle_timeout": "1s"}))
        async with h.ws_connect(gw.port) as ws:
            # Traffic every 0.3 s keeps the connection alive well past 1 s.
            start = time.monotonic()
            for i in range(8):
                await ws.send(f"keepalive {i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"keepalive {i}")
                await asyncio.sleep(0.3)
            self.assertGreater(time.monotonic() - start, 2.0)
            self.assertFalse(ws.closed, "closed although traffic flowed")
            silent_from = time.monotonic()
            await asyncio.wait_for(ws.wait_closed(), 15)
            elapsed = time.monotonic() - silent_from
        self.assertEqual(ws.close_code, 1001)
        self.assertGreaterEqual(elapsed, 0.6, "closed before idle_timeout")
        self.assertLess(elapsed, 5.0, "closed long after idle_timeout (1s)")
        rec = backend.conns[0]
        await backend.wait_done(rec)
        self.assertEqual(len(rec.messages), 8)
        self.assertEqual(rec.close_code, 1001)


if __name__ == "__main__":
    h.main()
