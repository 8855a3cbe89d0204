"""HTTP/1.1 client -> HTTP/1.1 upstream: the keep-alive pool's metrics (issue 15;
wsgate_upstream_idle_connections, wsgate_upstream_pool_{hits,misses}_total,
wsgate_upstream_idle_closes_total).

Sequential GETs share one pooled connection: the first misses, the others hit, and one
connection stays idle; after keepalive_timeout the gateway closes it and the gauge is
back to 0 with a `timeout` close counted. A POST never asks the pool.
"""

import asyncio
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402

KEEPALIVE_TIMEOUT = 3.0  # seconds: long enough to scrape the idle connection first


class UpstreamPoolMetrics(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.backend = await hh.start_node_backend(self, "b1")
        self.port = h.free_port()
        admin_port = h.free_port()
        text = (f'workers = 1\n\n[[listener]]\naddress = "127.0.0.1:{self.port}"\n\n'
                f'[[upstream]]\nname = "app"\nservers = ["{self.backend.address}"]\n'
                f'keepalive_timeout = "{int(KEEPALIVE_TIMEOUT * 1000)}ms"\n\n'
                '[[route]]\npath = "/"\nupstream = "app"\n')
        self.gw = await self.start_gateway(ac.with_admin(text, admin_port))
        self.admin = ac.Admin(admin_port)
        await self.admin.wait_up()

    async def get(self, *curl_args):
        p = await hh.curl(*curl_args, f"http://127.0.0.1:{self.port}/info")
        self.assertEqual(p.returncode, 0, p.stderr)

    async def test_idle_gauge_rises_with_requests_and_falls_after_keepalive_timeout(self):
        labels = {"upstream": "app", "server": self.backend.address}
        m = await self.admin.metrics()
        self.assertFalse(m.has("wsgate_upstream_idle_connections"), m.text[-2000:])
        for _ in range(5):
            await self.get()
        await self.get("--data-binary", "x")  # not idempotent: a new connection, no lookup
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_upstream_pool_misses_total", **labels), 1)
        self.assertEqual(m.value("wsgate_upstream_pool_hits_total", **labels), 4)
        # The GETs' connection and the POST's are both idle now (unless the scrape came
        # later than keepalive_timeout, which the closes below would then show).
        closed = m.value("wsgate_upstream_idle_closes_total", **labels, reason="timeout")
        self.assertEqual(m.value("wsgate_upstream_idle_connections", **labels) + closed, 2,
                         m.text)
        m = await self.admin.wait_metrics(
            lambda m: m.value("wsgate_upstream_idle_connections", **labels) == 0,
            "the idle connections to close after keepalive_timeout",
            timeout=KEEPALIVE_TIMEOUT + 20)
        self.assertEqual(m.value("wsgate_upstream_idle_closes_total", **labels, reason="timeout"), 2)
        self.assertEqual(m.value("wsgate_upstream_idle_closes_total", **labels, reason="closed"), 0)
        for reason in ("data", "evicted"):
            self.assertEqual(
                m.value("wsgate_upstream_idle_closes_total", **labels, reason=reason), 0)
        # The next GET finds nothing idle: a miss.
        await self.get()
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_upstream_pool_misses_total", **labels), 2)
        closed = m.value("wsgate_upstream_idle_closes_total", **labels, reason="timeout") - 2
        self.assertEqual(m.value("wsgate_upstream_idle_connections", **labels) + closed, 1)


if __name__ == "__main__":
    h.main()
