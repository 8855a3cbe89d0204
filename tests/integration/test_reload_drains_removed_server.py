"""Reload that removes a backend server: its WebSockets are drained. HTTP/1.1 clients ->
HTTP/1.1 backends; 20 WebSockets on server A; POST /reload with echo = [A2] (A removed),
drain_spread 1s. Every client gets Close 1001 ("upstream server left the pool") from
wsgate, and so does A's side; the Closes are spread over the window; new connections go
to A2; the process keeps running. The close times are printed.
"""

import asyncio
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402
import websockets  # noqa: E402

TOKEN = "reload-token"
CLIENTS = 20
SPREAD = 1.0


class ReloadDrainsRemovedServer(h.GatewayCase):
    def config(self, port, admin_port, servers):
        text = f'drain_spread = "{SPREAD:g}s"\n' + h.simple_config(port, servers)
        return ac.with_admin(text, admin_port, TOKEN)

    async def test_h1_h1_reload_removing_a_server_closes_its_websockets_with_1001(self):
        a = await self.start_backend()
        a2 = await self.start_backend()
        port, admin_port = h.free_port(), h.free_port()
        gw = await self.start_gateway(self.config(port, admin_port, [a.address]))
        admin = ac.Admin(admin_port, TOKEN)
        await admin.wait_up()

        clients = []
        for i in range(CLIENTS):
            ws = await h.ws_connect(port)
            self.addAsyncCleanup(ws.close)
            await ws.send(f"c{i}")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"c{i}")
            clients.append(ws)
        self.assertEqual(len(a.conns), CLIENTS)

        closed_at: list = [None] * CLIENTS

        async def watch(i, ws):
            try:
                while True:
                    await ws.recv()
            except websockets.exceptions.ConnectionClosed:
                closed_at[i] = time.monotonic()

        watchers = [asyncio.create_task(watch(i, ws)) for i, ws in enumerate(clients)]
        rh.write_config(gw, self.config(port, admin_port, [a2.address]))
        started = time.monotonic()
        status, _, body = await rh.post_reload(admin_port, TOKEN)
        self.assertEqual(status, 200, body)
        await asyncio.wait_for(asyncio.gather(*watchers), 10)

        self.assertEqual([ws.close_code for ws in clients], [1001] * CLIENTS)
        self.assertEqual({ws.close_reason for ws in clients}, {"upstream server left the pool"})
        offsets = sorted(t - started for t in closed_at)
        print(f"\n{CLIENTS} closes after POST /reload removed their server (drain_spread "
              f"{SPREAD:g}s): min {offsets[0]:.3f}s median {statistics.median(offsets):.3f}s "
              f"max {offsets[-1]:.3f}s", file=sys.stderr)
        self.assertGreater(offsets[-1] - offsets[0], 0.5 * SPREAD, "closes not spread")
        self.assertTrue(rh.log_lines(gw, f"server {a.address} left the pool"), gw.describe())
        for rec in a.conns:
            await a.wait_done(rec)
        self.assertEqual({rec.close_code for rec in a.conns}, {1001})

        # New connections follow the new config; the gateway keeps running.
        async with h.ws_connect(port) as ws:
            await ws.send("after")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "after")
        self.assertEqual(len(a2.conns), 1)
        self.assertEqual(len(a.conns), CLIENTS)
        self.assertIsNone(gw.proc.poll(), "the gateway exited")


if __name__ == "__main__":
    h.main()
