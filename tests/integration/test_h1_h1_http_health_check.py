"""HTTP/1.1 client -> two HTTP/1.1 upstream servers: the active health check of type
"http" ([upstream.health_check] type = "http"; issue 15). Each probe is GET path; a
server is healthy when it answers 2xx/3xx, or a status listed in expect_status. The
Node servers (http_backend.js) answer /status?code=503&only=b1 with 503 on b1 and 200 on
b2: b1 is marked down and the traffic goes to b2; with expect_status = [503] the verdicts
swap.
"""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402


class HttpHealthCheck(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.b1 = await hh.start_node_backend(self, "b1")
        self.b2 = await hh.start_node_backend(self, "b2")

    async def gateway(self, extra=""):
        self.port = h.free_port()
        text = (f'workers = 1\n\n[[listener]]\naddress = "127.0.0.1:{self.port}"\n\n'
                f'[[upstream]]\nname = "app"\n'
                f'servers = ["{self.b1.address}", "{self.b2.address}"]\n'
                f'balancer = "round_robin"\n\n'
                f'[upstream.health_check]\ntype = "http"\n'
                f'path = "/status?code=503&only=b1"\n{extra}'
                f'interval = "200ms"\ntimeout = "200ms"\nrise = 1\nfall = 2\n\n'
                f'[[route]]\npath = "/"\nupstream = "app"\n')
        self.gw = await self.start_gateway(text)

    async def servers_answering(self, n):
        seen = []
        for _ in range(n):
            p = await hh.curl(f"http://127.0.0.1:{self.port}/info")
            self.assertEqual(p.returncode, 0, p.stderr)
            seen.append(json.loads(p.stdout)["server"])
        return seen

    async def probes(self, backend):
        stats = await backend.stats_async()
        return [r for r in stats["requests"] if r[1].startswith("/status")]

    async def test_server_answering_503_is_marked_down(self):
        await self.gateway()
        down = f"server {self.b1.address} is down"
        await h.wait_until(lambda: down in self.gw.stderr_text(), 20, "b1 marked down")
        self.assertIn("answered 503", self.gw.stderr_text())
        self.assertNotIn(f"server {self.b2.address} is down", self.gw.stderr_text())
        self.assertEqual(await self.servers_answering(6), ["b2"] * 6)
        # The probes were plain GETs of the configured path.
        probe = (await self.probes(self.b2))[0]
        self.assertEqual(probe, ["GET", "/status?code=503&only=b1"])

    async def test_expect_status_replaces_2xx_3xx(self):
        await self.gateway("expect_status = [503]\n")
        down = f"server {self.b2.address} is down"
        await h.wait_until(lambda: down in self.gw.stderr_text(), 20, "b2 marked down")
        self.assertNotIn(f"server {self.b1.address} is down", self.gw.stderr_text())
        self.assertEqual(await self.servers_answering(4), ["b1"] * 4)


if __name__ == "__main__":
    h.main()
