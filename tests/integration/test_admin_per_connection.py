"""/metrics per-connection series ([admin] per_connection_metrics): with a cap of 2 and
3 open WebSockets, exactly the 2 oldest connections have wsgate_connection_* series
with their exact byte and message counts, and wsgate_connection_series_dropped is 1;
off by default, none of these families is exposed."""

import asyncio
import contextlib
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

PER_CONNECTION = ("wsgate_connection_bytes_total", "wsgate_connection_messages_total",
                  "wsgate_connection_series_dropped")


class PerConnectionSeries(h.GatewayCase):
    async def start(self, extra: str = ""):
        backend = await self.start_backend()
        admin_port = h.free_port()
        config = h.make_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                               [{"host": "*", "path": "/echo", "upstream": "echo",
                                 "name": "chat"}])
        gw = await self.start_gateway(ac.with_admin(config, admin_port) + extra)
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        return gw, admin, backend

    async def test_cap_keeps_the_oldest_and_counts_the_rest(self):
        gw, admin, backend = await self.start(
            "per_connection_metrics = true\nper_connection_limit = 2\n")
        sizes = [10, 20, 30]  # payload bytes of each connection's one text message
        async with contextlib.AsyncExitStack() as stack:
            for size in sizes:  # opened one after the other: the first is the oldest
                # No permessage-deflate, so that the wire bytes are known.
                ws = await stack.enter_async_context(h.ws_connect(gw.port, compression=None))
                await ws.send("x" * size)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x" * size)
                await asyncio.sleep(0.05)
            table = await admin.connections()
            rows = table["connections"]  # oldest first
            self.assertEqual(len(rows), 3, table)
            m = await admin.metrics()
            ids = {ls["id"] for n, ls, _ in m.samples if n == "wsgate_connection_bytes_total"}
            self.assertEqual(ids, {rows[0]["id"], rows[1]["id"]}, m.text)
            self.assertEqual(m.value("wsgate_connection_series_dropped"), 1)
            for row, size in zip(rows[:2], sizes[:2]):
                labels = {"id": row["id"], "route": "chat", "server": backend.address}
                # A client frame: 2 header bytes + 4 mask bytes; the echo: 2 header bytes.
                self.assertEqual(m.value("wsgate_connection_bytes_total",
                                         direction="client_to_upstream", **labels), size + 6,
                                 m.text)
                self.assertEqual(m.value("wsgate_connection_bytes_total",
                                         direction="upstream_to_client", **labels), size + 2,
                                 m.text)
                self.assertEqual(row["client_to_upstream"]["bytes"], size + 6)
                for direction in ("client_to_upstream", "upstream_to_client"):
                    self.assertEqual(m.value("wsgate_connection_messages_total",
                                             direction=direction, **labels), 1)
            self.assertNotIn(f'id="{rows[2]["id"]}"', m.text)
        # Closed connections lose their series.
        m = await admin.wait_metrics(
            lambda m: not m.has("wsgate_connection_bytes_total"), "the series to go")
        self.assertEqual(m.value("wsgate_connection_series_dropped"), 0)

    async def test_off_by_default(self):
        gw, admin, _ = await self.start()
        async with h.ws_connect(gw.port) as ws:
            await ws.send("hello")
            await asyncio.wait_for(ws.recv(), 10)
            m = await admin.wait_metrics(
                lambda m: m.value("wsgate_connections_active") == 1, "a live connection")
            for name in PER_CONNECTION:
                self.assertFalse(m.has(name), name)
                self.assertNotIn(name, m.text)


if __name__ == "__main__":
    h.main()
