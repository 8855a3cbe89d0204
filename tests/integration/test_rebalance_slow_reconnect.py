"""HTTP/1.1 clients -> HTTP/1.1 backends: rebalancing with clients that reconnect late.

Real clients reconnect after a backoff. 60 clients on servers A and B (30/30), the third
server C down at start; when C comes up, [upstream.rebalance] sheds 10 + 10. The clients
shed wait 3 s (six rebalancing intervals) before they reconnect, so at the next check A
and B hold 20 each and C nothing: counted naively, 40 connections over 3 servers would
make A and B look overloaded again. wsgate must keep counting the clients on their way
back: no more than 20 (plus a small tolerance) are shed in all, and the split ends at
20/20/20. The per-half-second timeline is printed.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import admin_client as ac  # noqa: E402
import test_rebalance as tr  # noqa: E402  (its config; its tests are not run from here)
import websockets  # noqa: E402

CLIENTS = 60
RECONNECT_AFTER = 3.0  # seconds a shed client waits before it reconnects
ATTEMPTS = 4
WATCH = 10.0  # seconds after C starts: plans, the late reconnects, and any extra shedding


class RebalanceSlowReconnect(h.GatewayCase):
    async def test_h1_h1_rebalance_late_reconnects_are_not_shed_twice(self):
        a = await self.start_backend()
        b = await self.start_backend()
        c_port = h.free_port()
        c_address = f"127.0.0.1:{c_port}"
        servers = [a.address, b.address, c_address]
        gw_port, admin_port = h.free_port(), h.free_port()
        gw = await self.start_gateway(ac.with_admin(tr.rebalance_config(gw_port, servers),
                                                    admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        await admin.wait_metrics(lambda m: m.has(tr.SERVERS_UP)
                                 and m.value(tr.SERVERS_UP, server=c_address) == 0,
                                 "the third server to be down")
        stop = asyncio.Event()
        open_ws: dict = {}
        sheds = []
        others = []

        def on_close(i, code, reason):
            if code != 1001:
                others.append((i, code))
                return False
            sheds.append(time.monotonic())
            return True

        # A shed client waits RECONNECT_AFTER before reconnecting.
        tasks = await tr.start_clients(CLIENTS, open_ws, lambda i: tr.reconnecting_client(
            gw_port, i, open_ws, stop, on_close, ATTEMPTS, backoff=RECONNECT_AFTER))

        async def distribution():
            m = await admin.metrics()
            return [int(m.value(tr.CONNS, server=s)) for s in servers], int(m.value(tr.SHED))

        c_server = await websockets.serve(tr.echo, "127.0.0.1", c_port, ping_interval=None)
        started = time.monotonic()
        timeline = []
        try:
            while time.monotonic() - started < WATCH:
                dist, shed = await distribution()
                timeline.append((time.monotonic() - started, dist, shed))
                await asyncio.sleep(0.5)
            final, shed_metric = await distribution()
        finally:
            stop.set()
            for ws in list(open_ws.values()):
                await ws.close()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
            c_server.close()
            await c_server.wait_closed()

        print(f"\nlate reconnects ({RECONNECT_AFTER:g}s backoff), {CLIENTS} clients "
              "([A, B, C] connections, shed total):", file=sys.stderr)
        for t, dist, shed in timeline:
            print(f"  {t:5.2f}s  {dist}  shed={shed}", file=sys.stderr)
        for line in gw.stderr_text().splitlines():
            if "rebalancing" in line and "closing" not in line:
                print("  log: " + line, file=sys.stderr)

        self.assertEqual(others, [], "clients closed with another code")
        self.assertLessEqual(len(sheds), 22, "clients on their way back were shed again")
        self.assertGreaterEqual(len(sheds), 16, "too few sheds to move 20 connections")
        self.assertEqual(shed_metric, len(sheds))
        self.assertEqual(sum(final), CLIENTS, final)
        self.assertTrue(all(18 <= n <= 22 for n in final), final)


if __name__ == "__main__":
    h.main()
