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

        ws = await h.RawWebSocket.connect("127.0.0.1", gw.port, "/echo", rcvbuf=64 * 1024)
        async with ws:
            rec = (await backend.wait_conns(1))[0]
            stalled, sent_at_stall, growth, baseline = await h.wait_for_stall(
                gw, lambda: (rec.sent_bytes, rec.last_progress),
                lambda: rec.sent_bytes >= TOTAL or rec.done.is_set(),
                stall_s=STALL_SECONDS, window_s=MEASURE_SECONDS)
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


class SlowBackend(h.GatewayCase):
    async def test_client_pushing_to_non_reading_backend(self):
        # The same in the other direction: the backend stops reading (websockets pauses
        # its transport when its one-message queue is full); the client's sends must
        # stall instead of piling up in the gateway.
        start_reading = asyncio.Event()

        async def lazy(ws, rec):
            await asyncio.wait_for(start_reading.wait(), 60)
            async for msg in ws:
                rec.messages.append(len(msg))

        backend = await self.start_backend(lazy, max_queue=1, read_limit=CHUNK)
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address], route={"buffer_size": "256KiB"}))
        progress = {"sent": 0, "at": time.monotonic()}

        async with h.ws_connect(gw.port, compression=None) as ws:
            async def pump():
                payload = b"\xcd" * CHUNK
                for _ in range(TOTAL // CHUNK):
                    await ws.send(payload)
                    progress["sent"] += CHUNK
                    progress["at"] = time.monotonic()

            pumper = asyncio.create_task(pump())
            try:
                stalled, sent_at_stall, growth, baseline = await h.wait_for_stall(
                    gw, lambda: (progress["sent"], progress["at"]), pumper.done,
                    stall_s=STALL_SECONDS, window_s=MEASURE_SECONDS)
                self.assertFalse(pumper.done() and pumper.exception(),
                                 f"client send failed: {pumper.exception() if pumper.done() else ''}")
                self.assertGreater(sent_at_stall, 256 * 1024, "the relay never moved data")
                self.assertLess(sent_at_stall, TOTAL, "all 200 MiB went through a stalled backend")
                self.assertLess(growth, RSS_BUDGET_KIB,
                                f"wsgate RSS grew by {growth} KiB (baseline {baseline} KiB)")
                self.assertTrue(stalled, f"client sends never stalled "
                                         f"(sent {sent_at_stall // MiB} MiB)")

                start_reading.set()
                await h.wait_until(lambda: progress["sent"] >= sent_at_stall + 4 * MiB, 60,
                                   "the client's sends to resume once the backend reads")
            finally:
                pumper.cancel()
                try:
                    await pumper
                except BaseException:
                    pass
        rec = backend.conns[0]
        await backend.wait_done(rec, 30)
        self.assertGreater(len(rec.messages), 0)
        self.assertTrue(all(n == CHUNK for n in rec.messages), "a message was cut")


if __name__ == "__main__":
    h.main()
