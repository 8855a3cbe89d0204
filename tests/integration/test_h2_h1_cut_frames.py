"""HTTP/2 client (RFC 8441, h2c) -> HTTP/1.1 backend: a data frame cut by its sender's end.

As in test_h1_h1_cut_frames.py, over an HTTP/2 stream: a backend that ends inside a
frame leaves the client's stream with exactly the bytes it sent, then RST_STREAM, no
Close (RFC 6455 5.4); a client stream that ends (END_STREAM) inside a frame leaves the
backend with exactly those bytes, then the end of its TCP connection, no Close.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

# A binary frame announcing 1000 payload bytes (16-bit length, RFC 6455 5.2), 10 sent.
UNMASKED_CUT = b"\x82\x7e\x03\xe8" + b"p" * 10
MASK = b"\x21\x43\x65\x87"
MASKED_CUT = b"\x82\xfe\x03\xe8" + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"p" * 10))


class CutFramesH2(h.GatewayCase):
    async def start(self, after_101):
        """A backend answering the upgrade by hand, then after_101(reader, writer, seen);
        the gateway (h2c) in front of it; an HTTP/2 WebSocket through both."""
        port, seen = await h.start_scripted_upgrade_backend(self, after_101)
        text = c.config(f"127.0.0.1:{h.free_port()}", {"echo": [f"127.0.0.1:{port}"]},
                        [{"name": "ws", "path": "/echo", "upstream": "echo"}], h2c=True)
        self.gw = await self.start_gateway(text)
        conn = await c.H2Conn.open("127.0.0.1", self.gw.port, tls=False)
        self.addAsyncCleanup(conn.close)
        ws = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        return seen, conn, ws

    async def test_backend_ends_inside_a_frame(self):
        async def cut_and_leave(reader, writer, seen):
            writer.write(UNMASKED_CUT)
            await writer.drain()

        _, conn, ws = await self.start(cut_and_leave)
        await conn.wait_for(lambda: ws.st.ended or ws.st.reset is not None, 10,
                            "the stream's end")
        self.assertIsNotNone(ws.st.reset, "a cut stream is reset, not ended")
        self.assertEqual(bytes(ws.st.data), UNMASKED_CUT, "no Close after the cut frame")
        line = await self.gw.wait_access_line(lambda f: f.get("proto") == "h2", "the stream")
        self.assertEqual((line["close_code"], line["closed_by"]), ("1006", "upstream"), line)

    async def test_client_ends_inside_a_frame(self):
        async def record(reader, writer, seen):
            data = b""
            while True:
                chunk = await asyncio.wait_for(reader.read(4096), 10)
                if not chunk:
                    break
                data += chunk
            seen["after"] = data
            seen["took"] = time.monotonic()

        seen, conn, ws = await self.start(record)
        await ws.send_raw(MASKED_CUT)
        await asyncio.sleep(0.2)  # the bytes reach the backend first
        started = time.monotonic()
        await conn.end(ws.st)  # END_STREAM inside the frame
        await h.wait_until(lambda: "after" in seen or "error" in seen, 15, "backend to finish")
        self.assertNotIn("error", seen)
        self.assertEqual(seen["after"], MASKED_CUT, "nothing may follow the cut frame, no Close")
        self.assertLess(seen["took"] - started, 4, "ended at once, not at close_timeout")
        line = await self.gw.wait_access_line(lambda f: f.get("proto") == "h2", "the stream")
        self.assertEqual((line["close_code"], line["closed_by"]), ("1006", "client"), line)


if __name__ == "__main__":
    h.main()
