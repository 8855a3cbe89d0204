"""HTTP/1.1 clients -> HTTP/1.1 backends found by DNS: a member that leaves the answer
is drained over drain_spread. Its 12 connections get Close 1001 ("upstream server left
the pool") spread over the 1 s window, not all at once; the other member's connection
stays open. Uses the tiny DNS responder of test_h1_h1_dns_membership.py.
"""

import asyncio
import os
import statistics
import sys
import time

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_h1_h1_dns_membership import NAME, IpBackend, TinyDns  # noqa: E402

HELD = 12
SPREAD = 1.0


class DnsDrainSpread(h.GatewayCase):
    async def test_h1_h1_member_leaving_the_pool_is_drained_over_drain_spread(self):
        loop = asyncio.get_running_loop()
        transport, dns = await loop.create_datagram_endpoint(TinyDns,
                                                             local_addr=("127.0.0.1", 0))
        self.addCleanup(transport.close)
        dns_port = transport.get_extra_info("sockname")[1]
        port = h.free_port("127.0.0.2")
        b2, b3 = IpBackend("127.0.0.2", port), IpBackend("127.0.0.3", port)
        for b in (b2, b3):
            await b.start()
            self.addAsyncCleanup(b.stop)
        dns.addresses = ["127.0.0.2"]
        gw_port = h.free_port()
        config = (f'workers = 2\naccess_log = ""\ndrain_spread = "{SPREAD:g}s"\n'
                  f'nameservers = ["127.0.0.1:{dns_port}"]\n\n'
                  f'[[listener]]\naddress = "127.0.0.1:{gw_port}"\n\n'
                  f'[[upstream]]\nname = "echo"\nservers = ["{NAME}:{port}"]\n'
                  f'resolve_interval = "200ms"\n\n'
                  f'[[route]]\npath = "/echo"\nupstream = "echo"\n')
        gw = await self.start_gateway(config)
        await h.wait_until(lambda: "resolves to 127.0.0.2" in gw.stderr_text(), 10,
                           "the first answer")
        held = []
        for i in range(HELD):
            ws = await h.ws_connect(gw.port)
            self.addAsyncCleanup(ws.close)
            await ws.send(f"h{i}")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"127.0.0.2:h{i}")
            held.append(ws)
        closed_at = [None] * HELD

        async def watch(i, ws):
            try:
                while True:
                    await ws.recv()
            except websockets.exceptions.ConnectionClosed:
                closed_at[i] = time.monotonic()

        watchers = [asyncio.create_task(watch(i, ws)) for i, ws in enumerate(held)]
        # Both members for a moment, then only the new one: 127.0.0.2 leaves.
        dns.addresses = ["127.0.0.2", "127.0.0.3"]
        await h.wait_until(lambda: "added 127.0.0.3" in gw.stderr_text(), 10, "the new member")
        other = await h.ws_connect(gw.port, open_timeout=10)
        self.addAsyncCleanup(other.close)
        dns.addresses = ["127.0.0.3"]
        await asyncio.wait_for(asyncio.gather(*watchers), 10)
        self.assertEqual({(ws.close_code, ws.close_reason) for ws in held},
                         {(1001, "upstream server left the pool")})
        first = min(closed_at)
        offsets = sorted(t - first for t in closed_at)
        print(f"\n{HELD} closes of the member that left (drain_spread {SPREAD:g}s), after the "
              f"first: median {statistics.median(offsets):.3f}s max {offsets[-1]:.3f}s; "
              + " ".join(f"{t:.2f}" for t in offsets), file=sys.stderr)
        self.assertGreater(offsets[-1], 0.5 * SPREAD, "closed all at once, not spread")
        self.assertLess(offsets[-1], SPREAD + 0.5)
        self.assertLessEqual(sum(1 for t in offsets if t < 0.1 * SPREAD), HELD // 2)
        # A connection on a member that stays is untouched.
        await other.send("x")
        self.assertTrue((await asyncio.wait_for(other.recv(), 10)).endswith(":x"))
        self.assertIn("(left the pool)", gw.stderr_text())


if __name__ == "__main__":
    h.main()
