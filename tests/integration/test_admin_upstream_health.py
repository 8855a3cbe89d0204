"""/metrics: backend health and load per server, read from the shared pools.

Two backends behind one upstream with an active TCP health check (200 ms, fall 2):
wsgate_upstream_server_connections equals the open WebSockets on each server (as
/connections places them); after one backend is killed, wsgate_upstream_server_up
becomes 0 for it (with a to="down" transition counted) and stays 1 for the other,
whose connections are still counted.
"""

import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import lb_helpers as lb  # noqa: E402

CHECK = {"type": "tcp", "interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2}


class UpstreamHealthMetrics(h.GatewayCase):
    async def test_up_and_connections_per_server(self):
        live = await self.start_backend()
        victim = h.EchoBackendProcess()
        await victim.__aenter__()
        self.addAsyncCleanup(victim.__aexit__, None, None, None)
        admin_port = h.free_port()
        gw = await self.start_gateway(ac.with_admin(lb.lb_config(
            h.free_port(), [lb.server_entry(live.address), lb.server_entry(victim.address)],
            upstream={"balancer": "round_robin"}, health_check=CHECK, workers=1), admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()

        m = await admin.metrics()
        for server in (live.address, victim.address):
            self.assertEqual(m.value("wsgate_upstream_server_up", upstream="echo",
                                     server=server), 1, m.text)
            self.assertEqual(m.value("wsgate_upstream_server_connections", upstream="echo",
                                     server=server), 0)
            self.assertTrue(any(n == "wsgate_upstream_server_health_transitions_total"
                                and ls.get("server") == server and ls.get("to") == "down"
                                for n, ls, _ in m.samples), m.text)

        async with contextlib.AsyncExitStack() as stack:
            sockets = []
            for i in range(5):
                ws = await stack.enter_async_context(h.ws_connect(gw.port))
                await ws.send(f"m{i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"m{i}")
                sockets.append(ws)
            table = await admin.connections()
            placed = Counter(c["server"] for c in table["connections"]
                             if c["state"] == "relaying")
            self.assertEqual(sum(placed.values()), 5, table)
            self.assertGreater(placed[live.address], 0, placed)
            self.assertGreater(placed[victim.address], 0, placed)
            m = await admin.metrics()
            for server in (live.address, victim.address):
                self.assertEqual(m.value("wsgate_upstream_server_connections", upstream="echo",
                                         server=server), placed[server], m.text)

            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.proc.wait(timeout=10)
            # interval x fall = 400 ms; generous bound for slow machines.
            m = await admin.wait_metrics(
                lambda m: m.value("wsgate_upstream_server_up", upstream="echo",
                                  server=victim.address) == 0
                and m.value("wsgate_upstream_server_connections", upstream="echo",
                            server=victim.address) == 0,
                "the killed backend down with no connections", timeout=10)
            self.assertEqual(m.value("wsgate_upstream_server_up", upstream="echo",
                                     server=live.address), 1, m.text)
            self.assertEqual(m.value("wsgate_upstream_server_connections", upstream="echo",
                                     server=live.address), placed[live.address], m.text)
            self.assertGreaterEqual(
                m.value("wsgate_upstream_server_health_transitions_total", upstream="echo",
                        server=victim.address, to="down"), 1, m.text)
            self.assertEqual(
                m.value("wsgate_upstream_server_health_transitions_total", upstream="echo",
                        server=live.address, to="down"), 0, m.text)
            self.assertIn(f"server {victim.address} is down", gw.stderr_text())

            # The connections on the live server still relay.
            table = await admin.connections()
            live_ids = {c["id"] for c in table["connections"] if c["server"] == live.address}
            self.assertEqual(len(live_ids), placed[live.address])
            # Stays down: a few more scrapes over more than one check interval.
            for _ in range(3):
                await asyncio.sleep(0.25)
                m = await admin.metrics()
                self.assertEqual(m.value("wsgate_upstream_server_up", upstream="echo",
                                         server=victim.address), 0)
                self.assertEqual(m.value("wsgate_upstream_server_up", upstream="echo",
                                         server=live.address), 1)

        # All closed: both gauges back to 0.
        await admin.wait_metrics(
            lambda m: m.value("wsgate_upstream_server_connections", upstream="echo") == 0,
            "no upstream connections after the clients closed")


if __name__ == "__main__":
    h.main()
