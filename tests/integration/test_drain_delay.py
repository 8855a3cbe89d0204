"""drain_delay: on SIGTERM /ready answers 503 at once, while for drain_delay the
listeners still accept new WebSockets and the open ones keep relaying; then the usual
drain (Close 1001) and exit 0. A second SIGTERM during the delay starts the drain at once.
"""

import asyncio
import os
import signal
import sys
import time

import websockets.exceptions

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

DELAY = 3.0  # long enough to look inside it on a loaded machine


class DrainDelay(h.GatewayCase):
    async def gateway(self, delay: str):
        backend = await self.start_backend()
        self.admin_port = h.free_port()
        gw = await self.start_gateway(f"drain_delay = {h.toml_value(delay)}\n" + ac.with_admin(
            h.simple_config(h.free_port(), [backend.address]), self.admin_port))
        self.admin = ac.Admin(self.admin_port)
        await self.admin.wait_up()
        return gw

    async def ready_status(self) -> int:
        status, _, _ = await self.admin.get("/ready")
        return status

    async def test_ready_503_then_drain_after_the_delay(self):
        gw = await self.gateway(f"{int(DELAY * 1000)}ms")
        async with h.ws_connect(gw.port) as old:
            await old.send("before")
            self.assertEqual(await asyncio.wait_for(old.recv(), 10), "before")
            sent = time.monotonic()
            gw.send_signal(signal.SIGTERM)
            status = None
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                status = await self.ready_status()
                if status == 503:
                    break
                await asyncio.sleep(h.POLL_INTERVAL)
            self.assertEqual(status, 503)
            self.assertLess(time.monotonic() - sent, DELAY, "/ready turned 503 only after the delay")
            # Still inside the delay: a new WebSocket is accepted, the old one relays.
            async with h.ws_connect(gw.port) as new:
                await new.send("during")
                self.assertEqual(await asyncio.wait_for(new.recv(), 10), "during")
                await old.send("still")
                self.assertEqual(await asyncio.wait_for(old.recv(), 10), "still")
                self.assertLess(time.monotonic() - sent, DELAY, "the test was too slow to tell")
                # Then the drain: Close 1001 to both, not before the delay is over.
                for ws in (old, new):
                    with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                        await asyncio.wait_for(ws.recv(), 15)
                    self.assertEqual(cm.exception.rcvd.code, 1001)
                self.assertGreaterEqual(time.monotonic() - sent, DELAY - 0.05)
        self.assertEqual(await gw.wait_exit(h.STOP_DEADLINE), 0)
        self.assertIn("drain_delay", gw.stderr_text())

    async def test_second_sigterm_drains_at_once(self):
        gw = await self.gateway("60s")
        async with h.ws_connect(gw.port) as ws:
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), 10)
            gw.send_signal(signal.SIGTERM)
            await h.wait_until(lambda: "drain_delay" in gw.stderr_text(), 10, "the delay logged")
            start = time.monotonic()
            gw.send_signal(signal.SIGTERM)
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), 15)
            self.assertEqual(cm.exception.rcvd.code, 1001)
            self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(await gw.wait_exit(h.STOP_DEADLINE), 0)


if __name__ == "__main__":
    h.main()
