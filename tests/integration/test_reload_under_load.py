"""Reload in place under load: 50 WebSockets keep exchanging numbered messages with an
echo backend while the config file is rewritten twice, routes and upstreams changed,
and reloaded once by SIGHUP and once by POST /reload. Every connection must get every
echo, in order, and none may close; new connections must follow the new config.

  v1: /echo -> upstream echo = [A]
  v2 (SIGHUP): echo = [A2] (A leaves the pool: its 50 connections go on), new upstream
      tagged = [B] (a backend that answers "B:" + message), new route /tagged -> tagged
  v3 (POST /reload): route /tagged removed (404), /v3 -> tagged, echo = [A2, A]

The numbers (messages sent / echoed, connections before / after) are printed.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402
import websockets  # noqa: E402

TOKEN = "reload-token"
CONNECTIONS = 50
INTERVAL = 0.02  # seconds between one connection's messages
WINDOW = 8  # messages a connection may have in flight


async def tag_handler(ws, rec):
    async for message in ws:
        rec.messages.append(message)
        await ws.send("B:" + message)


class Flow:
    """One client WebSocket: a sender of numbered messages and a checker of the echoes."""

    def __init__(self, index, ws):
        self.index = index
        self.ws = ws
        self.sent = 0
        self.echoed = 0
        self.problems = []
        self.stop = asyncio.Event()

    async def send_loop(self):
        while not self.stop.is_set():
            if self.sent - self.echoed < WINDOW:
                await self.ws.send(f"{self.index}:{self.sent}")
                self.sent += 1
            await asyncio.sleep(INTERVAL)

    async def receive_loop(self):
        try:
            async for message in self.ws:
                expected = f"{self.index}:{self.echoed}"
                if message != expected:
                    self.problems.append(f"got {message!r}, expected {expected!r}")
                    return
                self.echoed += 1
        except websockets.exceptions.ConnectionClosed as e:
            self.problems.append(f"closed: {e}")


class ReloadUnderLoad(h.GatewayCase):
    def config(self, port, admin_port, upstreams, routes):
        text = h.make_config(f"127.0.0.1:{port}", upstreams, routes)
        return ac.with_admin(text, admin_port, TOKEN)

    async def echo_once(self, port, path, text):
        async with h.ws_connect(port, path) as ws:
            await ws.send(text)
            return await asyncio.wait_for(ws.recv(), 10)

    async def active(self, admin):
        return (await admin.metrics()).value("wsgate_connections_active")

    async def test_reload_routes_and_upstreams_under_50_websockets(self):
        a = await self.start_backend()
        a2 = await self.start_backend()
        b = await self.start_backend(tag_handler)
        port, admin_port = h.free_port(), h.free_port()
        echo_route = {"host": "*", "path": "/echo", "upstream": "echo"}
        v1 = self.config(port, admin_port, {"echo": [a.address]}, [echo_route])
        v2 = self.config(port, admin_port, {"echo": [a2.address], "tagged": [b.address]},
                         [echo_route, {"host": "*", "path": "/tagged", "upstream": "tagged"}])
        v3 = self.config(port, admin_port,
                         {"echo": [a2.address, a.address], "tagged": [b.address]},
                         [echo_route, {"host": "*", "path": "/v3", "upstream": "tagged"}])
        gw = await self.start_gateway(v1)
        admin = ac.Admin(admin_port, TOKEN)
        await admin.wait_up()

        flows = []
        for i in range(CONNECTIONS):
            flows.append(Flow(i, await h.ws_connect(port, "/echo").__aenter__()))
        tasks = [asyncio.create_task(f.send_loop()) for f in flows]
        tasks += [asyncio.create_task(f.receive_loop()) for f in flows]
        await h.wait_until(lambda: all(f.echoed >= 5 for f in flows), 20,
                           "every connection to get 5 echoes")
        self.assertEqual(len(a.conns), CONNECTIONS)
        before = await self.active(admin)

        # v2 by SIGHUP.
        rh.write_config(gw, v2)
        line = await rh.sighup(gw, rh.RELOADED)
        self.assertIn("2 route(s), 2 upstream(s)", line)
        self.assertTrue(rh.log_lines(gw, f"server {a.address} left the pool"),
                        "the server the reload removed is reported")
        self.assertEqual(await self.echo_once(port, "/tagged", "hello"), "B:hello")
        self.assertEqual(await self.echo_once(port, "/echo", "to a2"), "to a2")
        self.assertEqual(len(a2.conns), 1, "the new /echo connection went to the new server")
        self.assertEqual(len(a.conns), CONNECTIONS, "the removed server got nothing new")
        marks = [f.echoed for f in flows]
        await h.wait_until(lambda: all(f.echoed >= m + 20 for f, m in zip(flows, marks)), 20,
                           "every connection to keep exchanging after SIGHUP")

        # v3 by POST /reload (the token is required, GET is refused).
        rh.write_config(gw, v3)
        status, _, _ = await rh.post_reload(admin_port, None)
        self.assertEqual(status, 401)
        status, headers, _ = await rh.post_reload(admin_port, TOKEN, method="GET")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("allow"), "POST")
        status, _, body = await rh.post_reload(admin_port, TOKEN)
        self.assertEqual(status, 200, body)
        self.assertTrue(body.startswith("reloaded: "), body)
        self.assertEqual(await self.echo_once(port, "/v3", "three"), "B:three")
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
            await self.echo_once(port, "/tagged", "gone")
        self.assertEqual(refused.exception.status_code, 404)
        marks = [f.echoed for f in flows]
        await h.wait_until(lambda: all(f.echoed >= m + 20 for f, m in zip(flows, marks)), 20,
                           "every connection to keep exchanging after POST /reload")

        # Stop sending; every message sent must come back, in order, on an open connection.
        for f in flows:
            f.stop.set()
        await asyncio.gather(*tasks[:CONNECTIONS])
        await h.wait_until(lambda: all(f.echoed == f.sent or f.problems for f in flows), 20,
                           "the last echoes")
        after = await self.active(admin)
        metrics = await admin.metrics()
        problems = [f"connection {f.index}: {p}" for f in flows for p in f.problems]
        open_count = sum(1 for f in flows if f.ws.open)
        sent = sum(f.sent for f in flows)
        echoed = sum(f.echoed for f in flows)
        for f in flows:
            await f.ws.close()
        await asyncio.gather(*tasks[CONNECTIONS:])
        print(f"\nreload under load: {CONNECTIONS} connections, {sent} messages sent, "
              f"{echoed} echoed in order; relayed connections before the reloads "
              f"{before:.0f}, after {after:.0f}; open at the end {open_count}",
              file=sys.stderr)
        self.assertEqual(problems, [])
        self.assertEqual(open_count, CONNECTIONS)
        self.assertEqual(echoed, sent)
        self.assertEqual(before, CONNECTIONS)
        self.assertEqual(after, CONNECTIONS)
        self.assertEqual(metrics.value("wsgate_config_reloads_total", result="success"), 2)
        self.assertEqual(metrics.value("wsgate_config_reloads_total", result="failure"), 0)
        self.assertGreater(
            metrics.value("wsgate_config_last_reload_success_timestamp_seconds"), 1.7e9)
        # The backend saw each connection's messages exactly once, in order.
        by_index = {}
        for rec in a.conns:
            if rec.messages:
                by_index[int(rec.messages[0].split(":")[0])] = rec.messages
        self.assertEqual(len(by_index), CONNECTIONS)
        for f in flows:
            self.assertEqual(by_index[f.index], [f"{f.index}:{n}" for n in range(f.sent)])


if __name__ == "__main__":
    h.main()
