"""HTTP/1.1 client -> HTTP/1.1 backend: SIGTERM drains.

Every open connection gets Close 1001 on both sides, and wsgate exits 0 within
drain_timeout, even when a client never answers the close.
"""

import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class Drain(h.GatewayCase):
    async def test_sigterm_closes_all_with_1001_and_exits_0(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address],
                                                      drain_timeout="10s"))
        clients = []
        for i in range(3):
            ws = await h.ws_connect(gw.port)
            self.addAsyncCleanup(ws.close)
            await ws.send(f"client {i}")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"client {i}")
            clients.append(ws)
        recs = await backend.wait_conns(3)
        self.assertEqual(len(recs), 3)

        sent_at = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        for i, ws in enumerate(clients):
            await asyncio.wait_for(ws.wait_closed(), 15)
            self.assertEqual(ws.close_code, 1001, f"client {i}")
        for i, rec in enumerate(recs):
            await backend.wait_done(rec)
            self.assertEqual(rec.close_code, 1001, f"backend side of client {i}")
            self.assertEqual(rec.messages, [f"client {i}"])
        rc = await gw.wait_exit(15)
        took = time.monotonic() - sent_at
        self.assertEqual(rc, 0, f"wsgate exit code after drain\n{gw.describe()}")
        self.assertLess(took, 11.0, "wsgate did not exit within drain_timeout (10s)")

    async def test_drain_timeout_bounds_exit_when_client_never_answers(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address],
                                                      drain_timeout="2s"))
        ws = await h.RawWebSocket.connect("127.0.0.1", gw.port)
        async with ws:
            await ws.send_frame(h.OP_TEXT, b"hi")
            self.assertEqual((await ws.recv_frame(10)).payload, b"hi")
            rec = (await backend.wait_conns(1))[0]
            sent_at = time.monotonic()
            gw.send_signal(signal.SIGTERM)
            close = await ws.expect_close(10)
            self.assertEqual(close.close_code, 1001)
            # The client never answers the close; the gateway must still exit in time.
            rc = await gw.wait_exit(15)
            took = time.monotonic() - sent_at
        self.assertEqual(rc, 0, gw.describe())
        self.assertLess(took, 4.0, "wsgate ignored drain_timeout (2s)")
        await backend.wait_done(rec)
        self.assertEqual(rec.close_code, 1001)

    async def test_idle_gateway_exits_promptly(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address],
                                                      drain_timeout="10s"))
        sent_at = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        rc = await gw.wait_exit(15)
        self.assertEqual(rc, 0, gw.describe())
        self.assertLess(time.monotonic() - sent_at, 5.0,
                        "with no connections, wsgate should not wait for drain_timeout")

    async def test_repeated_sigterm_during_exit_still_exits_0(self):
        # A supervisor (or a test's cleanup) may signal again while wsgate tears down
        # after the drain; that must not turn exit 0 into death by SIGTERM.
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address],
                                                      drain_timeout="10s"))
        ws = await h.ws_connect(gw.port)
        self.addAsyncCleanup(ws.close)
        await ws.send("hi")
        self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hi")
        deadline = time.monotonic() + 15
        sent = 0
        while gw.proc.poll() is None and time.monotonic() < deadline:
            gw.send_signal(signal.SIGTERM)
            sent += 1
            await asyncio.sleep(0.002)
        rc = await gw.wait_exit(1)
        self.assertGreater(sent, 1)
        self.assertEqual(rc, 0, f"after {sent} SIGTERMs\n{gw.describe()}")
        await asyncio.wait_for(ws.wait_closed(), 10)
        self.assertEqual(ws.close_code, 1001)


if __name__ == "__main__":
    h.main()
