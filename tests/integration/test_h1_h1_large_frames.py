"""HTTP/1.1 client -> HTTP/1.1 backend: large frames go socket to socket by splice(2).

Between plain sockets, the rest of a data frame with at least 64 KiB still to come is
moved by the kernel through a pipe and never read into the gateway (issue 13). Nothing
about the WebSocket may change: every byte arrives in order, the counts are exact, the
gateway's keepalive Pings and its Close wait for the frame's end (RFC 6455 5.4), a
sender that ends inside such a frame cuts it as before, and a reader that stops holds
the sender back. wsgate_spliced_bytes_total shows the path was taken.
"""

import asyncio
import hashlib
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
# Sizes across the 64 KiB threshold and both length encodings (RFC 6455 5.2).
SIZES = [4 * MiB + 3, 300 * KiB, 10, 70 * KiB, 1 * MiB, 65535, 2 * MiB + 1]
SPLICED = "wsgate_spliced_bytes_total"


def frame_len(payload: int, masked: bool) -> int:
    header = 2 if payload < 126 else 4 if payload < 65536 else 10
    return header + (4 if masked else 0) + payload


def payload_of(i: int, n: int) -> bytes:
    # Varied bytes, so a byte moved to the wrong place shows.
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (n // len(seed) + 1))[:n]


class LargeFrames(h.GatewayCase):
    async def start(self, backend_address, route=None):
        self.admin_port = h.free_port()
        text = h.simple_config(h.free_port(), [backend_address], route=route, workers=1)
        gw = await self.start_gateway(ac.with_admin(text, self.admin_port))
        admin = ac.Admin(self.admin_port)
        await admin.wait_up()
        return gw, admin

    async def test_large_messages_both_ways_are_spliced_exact_and_counted(self):
        backend = await self.start_backend(compression=None)
        # Gateway Pings every 100 ms to both sides: each must wait for a frame boundary,
        # or the client and the backend (python websockets) fail on a broken frame.
        gw, admin = await self.start(backend.address, {"ping_interval": "100ms",
                                                       "ping_timeout": "10s"})
        before = await admin.metrics()
        async with h.ws_connect(gw.port, compression=None) as ws:
            for rnd in range(2):
                for i, n in enumerate(SIZES):
                    data = payload_of(rnd * 100 + i, n)
                    await ws.send(data)
                    echo = await asyncio.wait_for(ws.recv(), 30)
                    self.assertEqual(len(echo), n)
                    self.assertTrue(echo == data, f"message {i} of {n} bytes changed")
                await asyncio.sleep(0.3)  # a few Pings between the rounds
        line = await gw.wait_access_line(lambda f: f.get("route") == "*/echo", "the connection")
        after = await admin.metrics()
        d = lambda name, **ls: after.value(name, **ls) - before.value(name, **ls)  # noqa

        # Exact wire bytes: every frame as sent, plus the Close each way (a 2-byte code,
        # masked from the client); the gateway's own Pings and the Pongs they get are not
        # relayed traffic.
        c2u = 2 * sum(frame_len(n, True) for n in SIZES) + frame_len(2, True)
        u2c = 2 * sum(frame_len(n, False) for n in SIZES) + frame_len(2, False)
        self.assertEqual((int(line["c2u_bytes"]), int(line["u2c_bytes"])), (c2u, u2c), line)
        self.assertEqual((int(line["c2u_msgs"]), int(line["u2c_msgs"])),
                         (2 * len(SIZES), 2 * len(SIZES)), line)
        self.assertEqual(line["close_code"], "1000", line)

        # Most of every run of 64 KiB or more went by splice; nothing else did.
        large = 2 * sum(n for n in SIZES if n >= 64 * KiB)
        for direction in ("client_to_upstream", "upstream_to_client"):
            spliced = d(SPLICED, direction=direction)
            self.assertGreater(spliced, large // 2, f"{direction}: {spliced} of {large} spliced")
            self.assertLessEqual(spliced, large, direction)
        self.assertEqual(d("wsgate_ping_timeouts_total", side="client"), 0)
        self.assertEqual(d("wsgate_ping_timeouts_total", side="upstream"), 0)
        # The gateway did ping both sides, and both answered (the last round trip is logged).
        self.assertIn("client_ping_rtt_us", line)
        self.assertIn("upstream_ping_rtt_us", line)

    async def test_client_ending_inside_a_spliced_frame_cuts_it(self):
        async def record(reader, writer, seen):
            data = bytearray()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                chunk = await asyncio.wait_for(reader.read(256 * KiB), 15)
                if not chunk:
                    break
                data += chunk
            seen["after"] = bytes(data)

        port, seen = await h.start_scripted_upgrade_backend(self, record)
        gw, admin = await self.start(f"127.0.0.1:{port}")
        before = await admin.metrics()
        # A masked binary frame announcing 2 MiB, of which 700 KiB are sent.
        mask = b"\x11\x22\x33\x44"
        header = b"\x82\xff" + (2 * MiB).to_bytes(8, "big") + mask
        sent = header + payload_of(7, 700 * KiB)
        ws = await h.RawWebSocket.connect("127.0.0.1", gw.port)
        await ws.send_raw(sent)
        await asyncio.sleep(0.3)
        ws.close()
        await h.wait_until(lambda: "after" in seen or "error" in seen, 20, "backend EOF")
        self.assertNotIn("error", seen)
        got = seen["after"]
        self.assertEqual(len(got), len(sent), "the backend gets what was sent, then EOF")
        self.assertTrue(got == sent, "bytes changed on the way")
        line = await gw.wait_access_line(lambda f: f.get("route") == "*/echo", "the connection")
        self.assertEqual((line["close_code"], line["closed_by"]), ("1006", "client"), line)
        after = await admin.metrics()
        self.assertGreater(after.value(SPLICED, direction="client_to_upstream")
                           - before.value(SPLICED, direction="client_to_upstream"), 0)

    async def test_reader_that_stops_holds_back_a_spliced_sender(self):
        backend = await self.start_backend(h.push_handler(256 * MiB, 4 * MiB), compression=None)
        gw, admin = await self.start(backend.address, {"buffer_size": "256KiB"})
        ws = await h.RawWebSocket.connect("127.0.0.1", gw.port, "/echo", rcvbuf=64 * KiB)
        async with ws:
            rec = (await backend.wait_conns(1))[0]
            stalled, sent_at_stall, growth, _ = await h.wait_for_stall(
                gw, lambda: (rec.sent_bytes, rec.last_progress),
                lambda: rec.sent_bytes >= 256 * MiB or rec.done.is_set(),
                stall_s=1.5, window_s=10.0)
            self.assertTrue(stalled, f"the backend never stalled (sent {sent_at_stall} B)")
            self.assertLess(sent_at_stall, 64 * MiB, "the gateway took far more than it holds")
            self.assertLess(growth, 32 * 1024, f"wsgate RSS grew by {growth} KiB")
            # Reading again: the frames arrive whole, and the flow resumes.
            for _ in range(3):
                f = await ws.recv_frame(30)
                self.assertIsNotNone(f)
                self.assertEqual((f.opcode, f.fin, len(f.payload)), (h.OP_BINARY, True, 4 * MiB))
                self.assertTrue(f.payload == b"\xab" * (4 * MiB))
        after = await admin.metrics()
        self.assertGreater(after.value(SPLICED, direction="upstream_to_client"), 4 * MiB)


if __name__ == "__main__":
    h.main()
