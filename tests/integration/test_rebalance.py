"""HTTP/1.1 clients -> HTTP/1.1 backends: rebalancing after scale-out.

Three servers, the third down at start (nothing listens on its port, so its health check
fails). 90 clients connect and spread 45/45 over the first two, and reconnect whenever
wsgate closes them with 1001 (at most 5 attempts each). Then the third server starts;
its health check brings it up and [upstream.rebalance] sheds the excess of the other
two: the distribution reaches 30/30/30 (27..33 each) within a bounded time, and no more
connections are shed than that needs (30, plus a small tolerance). A per-half-second
timeline of the distribution is printed.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import admin_client as ac  # noqa: E402
import websockets  # noqa: E402

CLIENTS = 90
ATTEMPTS = 5
CONVERGE_WITHIN = 15.0
SERVERS_UP = "wsgate_upstream_server_up"
CONNS = "wsgate_upstream_server_connections"
SHED = "wsgate_upstream_rebalanced_connections_total"


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def reconnecting_client(port: int, i: int, open_ws: dict, stop: asyncio.Event,
                              on_close, attempts: int, backoff: float = 0.0):
    """Client i: connects, gets one echo, holds the connection (in open_ws[i]) until it is
    closed, then reconnects while on_close(i, code, reason) says so, after `backoff` seconds
    (cut short by `stop`); at most `attempts` connections."""
    for _ in range(attempts):
        if stop.is_set():
            return
        async with h.ws_connect(port) as ws:
            await ws.send(f"c{i}")
            await asyncio.wait_for(ws.recv(), 10)
            open_ws[i] = ws
            try:
                while True:
                    await ws.recv()
            except websockets.exceptions.ConnectionClosed:
                pass
            open_ws.pop(i, None)
            if stop.is_set() or not on_close(i, ws.close_code, ws.close_reason):
                return
        if backoff > 0:
            try:
                await asyncio.wait_for(stop.wait(), backoff)
                return
            except asyncio.TimeoutError:
                pass


async def start_clients(n: int, open_ws: dict, client) -> list:
    """Starts client(i) for i < n, one at a time, each once the previous one is connected."""
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(i)))
        await h.wait_until(lambda: len(open_ws) == i + 1, 10, f"client {i} to connect")
    return tasks


def rebalance_config(gw_port: int, servers: list) -> str:
    """Three servers with fast TCP health checks; rebalancing every 500 ms, at most 20
    sheds a second."""
    return (f'workers = 2\ndrain_timeout = "10s"\naccess_log = ""\n\n'
            f'[[listener]]\naddress = "127.0.0.1:{gw_port}"\n\n'
            f'[[upstream]]\nname = "echo"\nservers = {h.toml_value(servers)}\n'
            f'eject_after_failures = 0\n'
            f'[upstream.health_check]\ntype = "tcp"\ninterval = "200ms"\n'
            f'timeout = "100ms"\nrise = 1\nfall = 1\n'
            f'[upstream.rebalance]\nfactor = 1.2\ninterval = "500ms"\n'
            f'max_per_second = 20\n\n'
            f'[[route]]\npath = "/echo"\nupstream = "echo"\n')


class Rebalance(h.GatewayCase):
    async def test_h1_h1_rebalance_after_scale_out_reaches_fair_shares(self):
        a = await self.start_backend()
        b = await self.start_backend()
        c_port = h.free_port()
        c_address = f"127.0.0.1:{c_port}"
        servers = [a.address, b.address, c_address]
        gw_port, admin_port = h.free_port(), h.free_port()
        config = rebalance_config(gw_port, servers)
        gw = await self.start_gateway(ac.with_admin(config, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        await admin.wait_metrics(lambda m: m.value(SERVERS_UP, server=c_address) == 0
                                 and m.has(SERVERS_UP), "the third server to be down")

        stop = asyncio.Event()
        open_ws: dict = {}
        closes_1001 = []       # (time, client) of every Close 1001 a client received
        other_closes = []

        def on_close(i, code, reason):
            if code == 1001:
                closes_1001.append((time.monotonic(), i))
                return True
            other_closes.append((i, code, reason))
            return False

        tasks = await start_clients(CLIENTS, open_ws, lambda i: reconnecting_client(
            gw.port, i, open_ws, stop, on_close, ATTEMPTS))

        async def distribution():
            m = await admin.metrics()
            return [int(m.value(CONNS, server=s)) for s in servers], int(m.value(SHED))

        before, _ = await distribution()
        self.assertEqual(sum(before), CLIENTS)
        self.assertEqual(before[2], 0)
        self.assertLessEqual(abs(before[0] - before[1]), 2, before)

        # Scale out: the third server starts; its health check brings it up.
        c_server = await websockets.serve(echo, "127.0.0.1", c_port, ping_interval=None)
        started = time.monotonic()
        timeline = []
        converged_at = None
        try:
            while time.monotonic() - started < CONVERGE_WITHIN:
                dist, shed = await distribution()
                t = time.monotonic() - started
                timeline.append((t, dist, shed, len(closes_1001)))
                if (converged_at is None and all(27 <= n <= 33 for n in dist)
                        and sum(dist) == CLIENTS):
                    converged_at = t
                # Keep watching two more seconds: no further shedding may follow.
                if converged_at is not None and t - converged_at > 2.0:
                    break
                await asyncio.sleep(0.5)
            final, shed_metric = await distribution()
        finally:
            stop.set()
            for ws in list(open_ws.values()):
                await ws.close()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
            c_server.close()
            await c_server.wait_closed()

        print("\nrebalancing timeline (s after the third server started: "
              "[A, B, C] connections, shed total (metric), Close 1001 seen by clients):",
              file=sys.stderr)
        for t, dist, shed, seen in timeline:
            print(f"  {t:5.2f}s  {dist}  shed={shed}  clients_saw_1001={seen}", file=sys.stderr)
        for line in gw.stderr_text().splitlines():
            if "rebalancing" in line:
                print("  log: " + line, file=sys.stderr)

        self.assertEqual(other_closes, [], "clients closed with another code")
        self.assertIsNotNone(converged_at,
                             f"no 27..33 split within {CONVERGE_WITHIN}s: {timeline[-1]}")
        self.assertTrue(all(27 <= n <= 33 for n in final), final)
        self.assertEqual(sum(final), CLIENTS)
        self.assertGreaterEqual(len(closes_1001), 24, "too few sheds to move 30 connections")
        self.assertLessEqual(len(closes_1001), 33, "more connections shed than needed")
        self.assertEqual(shed_metric, len(closes_1001))

    async def test_h1_h1_rebalance_slow_close_handshake_is_not_shed_twice(self):
        """Clients that answer the Close only after 2.5 s: their connections still count
        on the old servers for that long, past the next plan (1 s after the last batch).
        Counting them as closing already, wsgate sheds 5 + 5 of 15/15/0, not more."""
        a = await self.start_backend()
        b = await self.start_backend()
        c_port = h.free_port()
        c_address = f"127.0.0.1:{c_port}"
        servers = [a.address, b.address, c_address]
        gw_port, admin_port = h.free_port(), h.free_port()
        gw = await self.start_gateway(ac.with_admin(rebalance_config(gw_port, servers),
                                                    admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        await admin.wait_metrics(lambda m: m.has(SERVERS_UP)
                                 and m.value(SERVERS_UP, server=c_address) == 0,
                                 "the third server to be down")
        clients, slow = 30, 2.5
        connected = set()
        sheds = []

        async def client(i):
            for _ in range(3):
                ws = await h.RawWebSocket.connect("127.0.0.1", gw_port)
                try:
                    await ws.send_frame(h.OP_TEXT, b"hi")
                    await ws.recv_frame(10)
                    connected.add(i)
                    close = await ws.expect_close(60)
                    connected.discard(i)
                    sheds.append((time.monotonic(), close.close_code))
                    await asyncio.sleep(slow)  # a slow client: the Close is answered late
                    await ws.send_frame(h.OP_CLOSE, close.payload[:2])
                    await ws.wait_eof(10)
                finally:
                    ws.close()

        tasks = []
        for i in range(clients):
            tasks.append(asyncio.create_task(client(i)))
            await h.wait_until(lambda: len(connected) == i + 1, 10, f"client {i} to connect")

        async def distribution():
            m = await admin.metrics()
            return ([int(m.value(CONNS, server=s)) for s in servers], int(m.value(SHED)),
                    int(m.value("wsgate_upstream_server_connections")))

        c_server = await websockets.serve(echo, "127.0.0.1", c_port, ping_interval=None)
        started = time.monotonic()
        timeline = []
        try:
            # Long enough for two more plans after the slow closes finish.
            while time.monotonic() - started < 7.0:
                dist, shed, _ = await distribution()
                timeline.append((time.monotonic() - started, dist, shed, len(sheds)))
                await asyncio.sleep(0.5)
            final, shed_metric, _ = await distribution()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            c_server.close()
            await c_server.wait_closed()
        print(f"\nslow close handshakes ({slow}s), 30 clients ([A, B, C], shed total):",
              file=sys.stderr)
        for t, dist, shed, seen in timeline:
            print(f"  {t:5.2f}s  {dist}  shed={shed}  clients_saw_close={seen}", file=sys.stderr)
        self.assertEqual({code for _, code in sheds}, {1001})
        self.assertEqual(shed_metric, 10, f"shed more than 5 + 5: {timeline}")
        self.assertEqual(len(sheds), 10)
        self.assertTrue(all(9 <= n <= 11 for n in final), final)


if __name__ == "__main__":
    h.main()
