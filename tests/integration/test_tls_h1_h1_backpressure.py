"""wss:// client -> TLS listener -> ws:// backend: backpressure through the TLS endpoint.

The relay drives the client's TLS session itself (proxy/relay/tls_socket_endpoint.cc):
writes the socket does not take wait for it, and reading stops while the other side is
full. A wss client that stops reading must stall the backend's sends without the
gateway buffering them, and the flow must resume, intact, once it reads; the same the
other way with a backend that stops reading.
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


class TlsBackpressure(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.cert = pki.leaf("a", cls.ca, ["a.test"])

    async def start_tls_gateway(self, backend):
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                            [{"path": "/echo", "upstream": "echo", "buffer_size": "256KiB"}],
                            listener_tls={"certificates": [{"cert": self.cert.cert,
                                                            "key": self.cert.key}]},
                            workers=1)
        return await self.start_gateway(text)

    async def test_backend_pushing_to_non_reading_wss_client(self):
        backend = await self.start_backend(h.push_handler(TOTAL, CHUNK))
        gw = await self.start_tls_gateway(backend)
        ctx = h.client_ssl_context(self.ca.cert)
        # websockets stops reading its transport once one message waits unread.
        async with h.wss_connect(gw.port, ctx, "a.test", compression=None, max_queue=1,
                                 read_limit=CHUNK) as ws:
            rec = (await backend.wait_conns(1))[0]
            stalled, at_stall, growth, _ = await h.wait_for_stall(
                gw, lambda: (rec.sent_bytes, rec.last_progress), rec.done.is_set,
                stall_s=STALL_SECONDS, window_s=MEASURE_SECONDS)
            self.assertFalse(rec.done.is_set(), f"backend connection ended early: {rec}")
            self.assertGreater(at_stall, 256 * 1024, "the relay never moved data")
            self.assertLess(at_stall, TOTAL, "all 200 MiB went to a client that read nothing")
            self.assertLess(growth, RSS_BUDGET_KIB, f"wsgate RSS grew by {growth} KiB")
            self.assertTrue(stalled, f"backend sends never stalled (sent {at_stall // MiB} MiB)")

            # The client reads: the messages are intact and the backend resumes.
            target = at_stall + 4 * MiB
            deadline = time.monotonic() + 60
            read = 0
            while rec.sent_bytes < target and time.monotonic() < deadline and read < 100000:
                msg = await asyncio.wait_for(ws.recv(), 10)
                self.assertEqual(msg, b"\xab" * CHUNK)
                read += 1
            self.assertGreaterEqual(rec.sent_bytes, target,
                                    f"backend did not resume after the client read {read}")

    async def test_wss_client_pushing_to_non_reading_backend(self):
        start_reading = asyncio.Event()

        async def lazy(ws, rec):
            await asyncio.wait_for(start_reading.wait(), 60)
            async for msg in ws:
                rec.messages.append(len(msg))

        backend = await self.start_backend(lazy, max_queue=1, read_limit=CHUNK)
        gw = await self.start_tls_gateway(backend)
        ctx = h.client_ssl_context(self.ca.cert)
        progress = {"sent": 0, "at": time.monotonic()}
        async with h.wss_connect(gw.port, ctx, "a.test", compression=None) as ws:
            async def pump():
                payload = b"\xcd" * CHUNK
                for _ in range(TOTAL // CHUNK):
                    await ws.send(payload)
                    progress["sent"] += CHUNK
                    progress["at"] = time.monotonic()

            pumper = asyncio.create_task(pump())
            try:
                stalled, at_stall, growth, _ = await h.wait_for_stall(
                    gw, lambda: (progress["sent"], progress["at"]), pumper.done,
                    stall_s=STALL_SECONDS, window_s=MEASURE_SECONDS)
                self.assertFalse(pumper.done() and pumper.exception(),
                                 f"client send failed: {pumper.exception() if pumper.done() else ''}")
                self.assertGreater(at_stall, 256 * 1024, "the relay never moved data")
                self.assertLess(at_stall, TOTAL, "all 200 MiB went through a stalled backend")
                self.assertLess(growth, RSS_BUDGET_KIB, f"wsgate RSS grew by {growth} KiB")
                self.assertTrue(stalled, f"client sends never stalled (sent {at_stall // MiB} MiB)")
                start_reading.set()
                await h.wait_until(lambda: progress["sent"] >= at_stall + 4 * MiB, 60,
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
