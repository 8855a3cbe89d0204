"""HTTP/1.1 client -> HTTP/1.1 backend: a data frame cut by its sender's end.

When one side's TCP connection ends while a data frame it sent is only partly
forwarded, the rest of that frame can never reach the other side, and a Close may not
go inside a frame (RFC 6455 5.4): the other side gets exactly the bytes that were sent,
then its connection ends without a Close (1006 for it too), at once rather than after
close_timeout.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# A binary frame announcing 1000 payload bytes (16-bit length, RFC 6455 5.2), 10 sent.
UNMASKED_CUT = b"\x82\x7e\x03\xe8" + b"p" * 10
MASK = b"\x21\x43\x65\x87"
MASKED_CUT = b"\x82\xfe\x03\xe8" + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"p" * 10))


class CutFrames(h.GatewayCase):
    async def start_raw_backend(self, after_101):
        """A backend that answers the upgrade by hand, then runs after_101(reader, writer);
        returns the dict it records in ("after": bytes up to EOF, or "error")."""
        port, seen = await h.start_scripted_upgrade_backend(self, after_101)
        self.gw = await self.start_gateway(
            h.simple_config(h.free_port(), [f"127.0.0.1:{port}"]))
        return seen

    async def test_backend_ends_inside_a_frame(self):
        async def cut_and_leave(reader, writer, seen):
            writer.write(UNMASKED_CUT)
            await writer.drain()
            # then the finally: FIN

        await self.start_raw_backend(cut_and_leave)
        async with await h.RawWebSocket.connect("127.0.0.1", self.gw.port) as ws:
            started = time.monotonic()
            data, closed = await ws.conn.read_until_eof(10)
            data = ws.buf + data
        self.assertTrue(closed, "the client's connection did not end")
        self.assertEqual(data, UNMASKED_CUT, "nothing may follow the cut frame, no Close")
        self.assertLess(time.monotonic() - started, 4, "ended at once, not at close_timeout")
        line = await self.gw.wait_access_line(lambda f: f.get("route") == "*/echo",
                                              "the connection")
        self.assertEqual((line["close_code"], line["closed_by"]), ("1006", "upstream"), line)

    async def test_client_ends_inside_a_frame(self):
        async def record(reader, writer, seen):
            data = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                chunk = await asyncio.wait_for(reader.read(4096), 10)
                if not chunk:
                    break
                data += chunk
            seen["after"] = data
            seen["took"] = time.monotonic()

        seen = await self.start_raw_backend(record)
        ws = await h.RawWebSocket.connect("127.0.0.1", self.gw.port)
        await ws.send_raw(MASKED_CUT)
        await asyncio.sleep(0.2)  # the bytes reach the backend first
        started = time.monotonic()
        ws.close()
        await h.wait_until(lambda: "after" in seen or "error" in seen, 15, "backend to finish")
        self.assertNotIn("error", seen)
        self.assertEqual(seen["after"], MASKED_CUT, "nothing may follow the cut frame, no Close")
        self.assertLess(seen["took"] - started, 4, "ended at once, not at close_timeout")
        line = await self.gw.wait_access_line(lambda f: f.get("route") == "*/echo",
                                              "the connection")
        self.assertEqual((line["close_code"], line["closed_by"]), ("1006", "client"), line)


if __name__ == "__main__":
    h.main()
