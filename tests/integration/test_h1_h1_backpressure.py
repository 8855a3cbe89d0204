"""HTTP/1.1 client -> HTTP/1.1 backend: a client that does not read.

The backend pushes 200 MiB (64 KiB messages, each send awaiting the transport's drain)
to a raw client that completed the handshake and then reads nothing. The gateway must
stop reading the backend instead of buffering: its RSS grows by less than 64 MiB and the
backend's sends stall. When the client starts reading, the flow resumes.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MiB = 1024 * 1024
TOTAL = 200 * MiB
CHUNK = 64 * 1024
RSS_BUDGET_KIB = 64 * 1024
STALL_SECONDS = 1.5      # no send progress for this long = stalled
MEASURE_SECONDS = 8.0    # upper bound of the observation window


class SlowReader(h.GatewayCase):
    async def test_backend_pushing_to_non_reading_client(self):
        backend = await self.start_backend(h.push_handler(TOTAL, CHUNK))
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address], route={"buffer_size": "256KiB"}))
        baseline = gw.vmrss_kib()

        ws = await h.RawWebSocket.connect("127.0.0.1", gw.port, "/echo", rcvbuf=64 * 1024)
        async with ws:
            rec = (await backend.wait_conns(1))[0]
            start = time.monotonic()
            peak = baseline
            stalled = False
            samples = 0
            while time.monotonic() - start < MEASURE_SECONDS and samples < 10000:
                samples += 1
                peak = max(peak, gw.vmrss_kib())
                if rec.sent_bytes >= TOTAL or rec.done.is_set():
                    break
                if rec.sent_bytes > 0 and time.monotonic() - rec.last_progress > STALL_SECONDS \
                        and time.monotonic() - start > 2.0:
                    stalled = True
                    break
                await asyncio.sleep(0.05)
            sent_at_stall = rec.sent_bytes
            growth = peak - baseline
            self.assertFalse(rec.done.is_set(), f"backend connection ended early: {rec}")
            self.assertGreater(sent_at_stall, 256 * 1024, "the relay never moved data")
            self.assertLess(sent_at_stall, TOTAL,
                            "all 200 MiB were accepted although the client read nothing")
            self.assertLess(growth, RSS_BUDGET_KIB,
                            f"wsgate RSS grew by {growth} KiB (baseline {baseline} KiB, "
                            f"backend had sent {sent_at_stall // MiB} MiB)")
            self.assertTrue(stalled, f"backend sends never stalled within {MEASURE_SECONDS}s "
                                     f"(sent {sent_at_stall // MiB} MiB)")

            # The client starts reading: the frames are intact and the backend resumes.
            first = await ws.recv_frame(10)
            self.assertEqual((first.opcode, first.fin, len(first.payload)),
                             (h.OP_BINARY, True, CHUNK))
            self.assertEqual(first.payload, b"\xab" * CHUNK)
            read_frames = 1
            target = sent_at_stall + 4 * MiB
            deadline = time.monotonic() + 60
            while rec.sent_bytes < target and time.monotonic() < deadline \
                    and read_frames < 100000:
                frame = await ws.recv_frame(10)
                self.assertIsNotNone(frame, "gateway closed the slow client")
                self.assertEqual((frame.opcode, len(frame.payload)), (h.OP_BINARY, CHUNK))
                read_frames += 1
            self.assertGreaterEqual(rec.sent_bytes, target,
                                    f"backend did not resume after the client read "
                                    f"{read_frames} frames")
            await ws.send_frame(h.OP_CLOSE, h.close_payload(1000))
        # Closing the socket with unread data (a reset) must end the backend side too.
        await backend.wait_done(rec, 30)


if __name__ == "__main__":
    h.main()
