"""Admin listener: closing WebSockets on request.

POST /connections/<id>/close closes one connection (the id /connections shows) with
the given code and reason, to the client and to the backend; POST
/upstreams/<name>/servers/<address>/close closes every connection of one server and
says how many. Bad codes and over-long reasons are 400 with a reason, unknown ids,
upstreams and servers 404, GET 405, a missing token 401.
"""

import asyncio
import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import admin_client as ac  # noqa: E402
import websockets  # noqa: E402

TOKEN = "s3cret-token"


class AdminClose(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.a = await self.start_backend()
        self.b = await self.start_backend()
        admin_port = h.free_port()
        config = h.simple_config(h.free_port(), [self.a.address, self.b.address])
        self.gw = await self.start_gateway(ac.with_admin(config, admin_port, TOKEN))
        self.admin = ac.Admin(admin_port, TOKEN)
        await self.admin.wait_up()
        self.clients = []
        for i in range(6):
            ws = await h.ws_connect(self.gw.port)
            self.addAsyncCleanup(ws.close)
            await ws.send(f"c{i}")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"c{i}")
            self.clients.append(ws)

    async def rows(self):
        table = await self.admin.connections()
        return [r for r in table["connections"] if r["state"] == "relaying"]

    def client_of(self, row):
        port = int(row["client"].rpartition(":")[2])
        for ws in self.clients:
            if ws.local_address[1] == port:
                return ws
        raise AssertionError(f"no client for {row}")

    async def test_close_one_connection_by_id_with_code_and_reason(self):
        rows = await self.rows()
        self.assertEqual(len(rows), 6)
        row = rows[0]
        ws = self.client_of(row)
        reason = urllib.parse.quote("maintenance ü")
        status, headers, body = await self.admin.post(
            f"/connections/{row['id']}/close?code=4000&reason={reason}")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"id": row["id"], "closed": 1, "code": 4000})
        with self.assertRaises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        self.assertEqual((ws.close_code, ws.close_reason), (4000, "maintenance ü"))
        # The backend side got the same Close.
        backend = self.a if row["server"] == self.a.address else self.b
        await h.wait_until(lambda: any(rec.close_code == 4000 for rec in backend.conns), 10,
                           "the backend to see Close 4000")
        # Everyone else is still connected.
        others = [c for c in self.clients if c is not ws]
        for i, c in enumerate(others):
            await c.send("still")
            self.assertEqual(await asyncio.wait_for(c.recv(), 10), "still")
        # Once gone, the id is unknown.
        await h.wait_until(lambda: ws.closed, 10, "the closed client to finish")
        status, _, body = await self.admin.post(f"/connections/{row['id']}/close")
        self.assertEqual(status, 404, body)

    async def test_close_all_connections_of_a_server(self):
        rows = await self.rows()
        on_a = [r for r in rows if r["server"] == self.a.address]
        self.assertGreater(len(on_a), 0)
        status, _, body = await self.admin.post(
            f"/upstreams/echo/servers/{self.a.address}/close")
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        self.assertEqual(answer, {"upstream": "echo", "server": self.a.address,
                                  "closed": len(on_a), "code": 1001})
        for r in on_a:
            ws = self.client_of(r)
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            self.assertEqual(ws.close_code, 1001)
        for r in rows:
            if r["server"] == self.b.address:
                ws = self.client_of(r)
                await ws.send("b")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "b")
        await h.wait_until(lambda: all(rec.close_code == 1001 for rec in self.a.conns), 10,
                           "server A's connections to get Close 1001")
        self.assertEqual(len(self.a.conns), len(on_a))

    async def test_bad_requests(self):
        row = (await self.rows())[0]
        base = f"/connections/{row['id']}/close"
        for code in ("1005", "999", "5000", "1006", "1002", "abc", ""):
            status, _, body = await self.admin.post(f"{base}?code={code}")
            self.assertEqual(status, 400, f"code={code}: {body!r}")
            self.assertIn(b"code: expected 1000, 1001, 1008, 1011 or 3000-4999", body)
        status, _, body = await self.admin.post(f"{base}?reason={'x' * 124}")
        self.assertEqual(status, 400, body)
        self.assertIn(b"reason: at most 123 bytes", body)
        status, _, body = await self.admin.post(f"{base}?reason=%ff")
        self.assertEqual(status, 400, body)
        self.assertIn(b"UTF-8", body)
        status, _, body = await self.admin.post(f"{base}?when=now")
        self.assertEqual(status, 400, body)
        status, _, body = await self.admin.post("/connections/abc/close")
        self.assertEqual(status, 400, body)
        status, _, body = await self.admin.post("/connections/0-999999/close")
        self.assertEqual(status, 404, body)
        status, _, body = await self.admin.post("/connections/7-1/close")
        self.assertEqual(status, 404, body)
        status, _, body = await self.admin.post("/upstreams/nope/servers/1.2.3.4:5/close")
        self.assertEqual(status, 404, body)
        status, _, body = await self.admin.post("/upstreams/echo/servers/1.2.3.4:5/close")
        self.assertEqual(status, 404, body)
        status, headers, body = await self.admin.get(base)
        self.assertEqual(status, 405, body)
        self.assertEqual(headers.get("allow"), "POST")
        status, _, body = await self.admin.post(base, token=None)
        self.assertEqual(status, 401, body)
        status, _, body = await self.admin.post("/metrics")
        self.assertEqual(status, 405, body)
        # A 123-byte reason is fine; nothing above closed anything.
        status, _, body = await self.admin.post(f"{base}?reason={'y' * 123}&code=1000")
        self.assertEqual(status, 200, body)
        ws = self.client_of(row)
        with self.assertRaises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        self.assertEqual((ws.close_code, ws.close_reason), (1000, "y" * 123))
        self.assertEqual(len(await self.rows()), 5)


if __name__ == "__main__":
    h.main()
