"""A reload keeps the health of the servers that stay: a server the active check found
down is still down right after the reload (no connection is sent to it), the restarted
checker does not count it down a second time, and when the server comes back the new
checker brings it up after `rise` successes."""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import lb_helpers as lb  # noqa: E402
import reload_helpers as rh  # noqa: E402

CHECK = {"type": "tcp", "interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2}


class ReloadHealthState(h.GatewayCase):
    async def test_down_server_stays_down_across_reload_and_comes_back(self):
        alive = await self.start_backend()
        dead_port = h.free_port()
        dead = f"127.0.0.1:{dead_port}"
        port, admin_port = h.free_port(), h.free_port()

        def config(route_path):
            text = lb.lb_config(port, [h.toml_value(alive.address), h.toml_value(dead)],
                                upstream={"balancer": "round_robin"}, health_check=CHECK,
                                route={"path": route_path})
            return ac.with_admin(text, admin_port)

        gw = await self.start_gateway(config("/echo"))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        await admin.wait_metrics(
            lambda m: m.value("wsgate_upstream_server_up", server=dead) == 0
            and m.value("wsgate_upstream_server_up", server=alive.address) == 1,
            "the dead server to be down")

        rh.write_config(gw, config("/moved"))
        await rh.sighup(gw, rh.RELOADED)
        m = await admin.metrics()
        self.assertEqual(m.value("wsgate_upstream_server_up", server=dead), 0)
        # Every new connection goes to the live server, none tries the dead one.
        for i in range(6):
            async with h.ws_connect(port, "/moved") as ws:
                await ws.send(f"m{i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"m{i}")
        self.assertEqual(len(alive.conns), 6)
        # The new checker has probed it every 200 ms: no second "down" transition. (An
        # absence can only be shown by waiting: three check intervals.)
        await asyncio.sleep(0.6)
        m = await admin.metrics()
        self.assertEqual(
            m.value("wsgate_upstream_server_health_transitions_total", server=dead, to="down"), 1)
        self.assertEqual(len(rh.log_lines(gw, f"server {dead} is down")), 1)

        # The server comes back: the new checker brings it up after `rise` successes.
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", dead_port)
        self.addAsyncCleanup(server.wait_closed)
        self.addCleanup(server.close)
        await admin.wait_metrics(
            lambda m: m.value("wsgate_upstream_server_up", server=dead) == 1,
            "the server to be up again")
        self.assertTrue(rh.log_lines(gw, f"server {dead} is up"))


if __name__ == "__main__":
    h.main()
