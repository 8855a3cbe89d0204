"""HTTP/1.1 client -> HTTP/1.1 backend, seen in the admin /connections table.

Live connections appear with their client address, listener, route, upstream server,
protocol, subprotocol and exact byte/frame/message counts each way; the route, server
and limit filters work; a connection leaves the table once it is closed.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402


class AdminConnections(h.GatewayCase):
    async def start(self):
        self.chat = await self.start_backend(compression=None, subprotocols=["chat.v1"])
        self.feed = await self.start_backend(compression=None)
        admin_port = h.free_port()
        text = h.make_config(
            f"127.0.0.1:{h.free_port()}",
            {"chat": [self.chat.address], "feed": [self.feed.address]},
            [{"name": "chat-route", "path": "/chat", "upstream": "chat"},
             {"name": "feed-route", "path": "/feed", "upstream": "feed"}],
            listener={"name": "public"})
        gw = await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        return gw, admin

    async def test_live_rows_with_exact_counts_then_gone_after_close(self):
        gw, admin = await self.start()
        chat = [await h.ws_connect(gw.port, "/chat", compression=None,
                                   subprotocols=["chat.v1"]).__aenter__() for _ in range(2)]
        feed = await h.ws_connect(gw.port, "/feed", compression=None).__aenter__()
        try:
            # Connection i sends i+1 text messages of 50 bytes and 1 binary of 300.
            for i, ws in enumerate(chat + [feed]):
                for _ in range(i + 1):
                    await ws.send("t" * 50)
                    await asyncio.wait_for(ws.recv(), 10)
                await ws.send(b"\x01" * 300)
                await asyncio.wait_for(ws.recv(), 10)

            table = await admin.connections()
            self.assertEqual(table["count"], 3, table)
            rows = {r["client"]: r for r in table["connections"]}
            for i, ws in enumerate(chat + [feed]):
                client = f"127.0.0.1:{ws.local_address[1]}"
                self.assertIn(client, rows)
                r = rows[client]
                is_chat = i < 2
                self.assertEqual(r["state"], "relaying")
                self.assertEqual(r["listener"], "public")
                self.assertEqual(r["route"], "chat-route" if is_chat else "feed-route")
                self.assertEqual(r["upstream"], "chat" if is_chat else "feed")
                self.assertEqual(r["server"], (self.chat if is_chat else self.feed).address)
                self.assertEqual(r["protocol"], "h1")
                self.assertEqual(r["subprotocol"], "chat.v1" if is_chat else "")
                self.assertRegex(r["id"], r"^\d+-\d+$")
                texts = i + 1
                # Masked client frames: 6-byte headers (8 for 300 bytes); server: 2 (4).
                c2u = texts * (50 + 6) + (300 + 8)
                u2c = texts * (50 + 2) + (300 + 4)
                self.assertEqual(r["client_to_upstream"],
                                 {"bytes": c2u, "frames": texts + 1, "messages": texts + 1,
                                  "pings": 0, "pongs": 0}, r)
                self.assertEqual(r["upstream_to_client"],
                                 {"bytes": u2c, "frames": texts + 1, "messages": texts + 1,
                                  "pings": 0, "pongs": 0}, r)
                self.assertEqual(r["buffered_bytes"], 0)
                self.assertGreaterEqual(r["age_seconds"], 0)
                self.assertLess(r["age_seconds"], 60)
                self.assertGreater(r["last_activity_unix"], 1.6e9)

            # Pings are counted per connection.
            pong = await chat[0].ping(b"p")
            await asyncio.wait_for(pong, 10)  # the pong came through the gateway
            table = await admin.connections("route=chat-route")
            self.assertEqual(table["count"], 2)
            self.assertTrue(all(r["route"] == "chat-route" for r in table["connections"]))
            pinged = [r for r in table["connections"]
                      if r["client"] == f"127.0.0.1:{chat[0].local_address[1]}"][0]
            self.assertEqual(pinged["client_to_upstream"]["pings"], 1)
            self.assertEqual(pinged["upstream_to_client"]["pongs"], 1)

            table = await admin.connections(f"server={self.feed.address}")
            self.assertEqual([r["route"] for r in table["connections"]], ["feed-route"])
            table = await admin.connections("limit=1")
            self.assertEqual((table["count"], table["returned"], len(table["connections"])),
                             (3, 1, 1))
            status, _, body = await admin.get("/connections?limit=x")
            self.assertEqual(status, 400, body)
        finally:
            await chat[0].close()
        # The closed connection leaves the table; the others stay.
        gone = f"127.0.0.1:{chat[0].local_address[1]}"

        async def rows_now():
            return {r["client"] for r in (await admin.connections())["connections"]}
        deadline = asyncio.get_running_loop().time() + 10
        while gone in await rows_now():
            self.assertLess(asyncio.get_running_loop().time(), deadline, "row never left")
            await asyncio.sleep(h.POLL_INTERVAL)
        self.assertEqual(len(await rows_now()), 2)
        for ws in (chat[1], feed):
            await ws.close()
        deadline = asyncio.get_running_loop().time() + 10
        while (await admin.connections())["count"] != 0:
            self.assertLess(asyncio.get_running_loop().time(), deadline, "rows never left")
            await asyncio.sleep(h.POLL_INTERVAL)

    async def test_handshaking_client_is_listed_without_a_server(self):
        gw, admin = await self.start()
        conn = await h.RawConn.open("127.0.0.1", gw.port)
        async with conn:
            await conn.send(b"GET /chat HTTP/1.1\r\nHost: x\r\n")  # head not finished
            client = f"127.0.0.1:{conn.local_port}"
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                rows = [r for r in (await admin.connections())["connections"]
                        if r["client"] == client]
                if rows:
                    break
                self.assertLess(asyncio.get_running_loop().time(), deadline)
                await asyncio.sleep(h.POLL_INTERVAL)
            self.assertEqual(rows[0]["state"], "reading_head")
            self.assertEqual(rows[0]["server"], "-")
            self.assertEqual(rows[0]["route"], "-")


if __name__ == "__main__":
    h.main()
