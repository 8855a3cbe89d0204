"""Reload and HTTP/2 (h2c with prior knowledge): an HTTP/2 connection established before
a reload keeps the config it started with, also for the streams it opens afterwards
(each stream's session finds that config's balancers); a new HTTP/2 connection follows
the new config. The WebSocket stream opened before the reload keeps echoing.

  v1: /echo -> upstream echo = [A]
  v2: /echo -> upstream echo = [B] (a backend that answers "B:" + message)
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402


async def tag_handler(ws, rec):
    async for message in ws:
        rec.messages.append(message)
        await ws.send("B:" + message)


class ReloadH2(h.GatewayCase):
    async def connect(self, port):
        conn = await c.H2Conn.open("127.0.0.1", port, tls=False)
        self.addAsyncCleanup(conn.close)
        return conn

    async def exchange(self, ws, text):
        await ws.send(h.OP_TEXT, text.encode())
        return (await ws.recv_message())[1].decode()

    async def test_h2_connection_keeps_its_config_for_new_streams(self):
        a = await self.start_backend(compression=None)
        b = await self.start_backend(tag_handler, compression=None)
        port = h.free_port()

        def config(backend):
            return c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                            [{"name": "ws", "path": "/echo", "upstream": "echo"}], h2c=True)

        gw = await self.start_gateway(config(a))
        old = await self.connect(port)
        first = await c.H2WebSocket.open(old, "/echo", scheme="http")
        self.assertEqual(await self.exchange(first, "one"), "one")

        rh.write_config(gw, config(b))
        await rh.sighup(gw, rh.RELOADED)

        # A new stream on the old connection: still the old config (upstream A).
        second = await c.H2WebSocket.open(old, "/echo", scheme="http")
        self.assertEqual(await self.exchange(second, "two"), "two")
        self.assertEqual(await self.exchange(first, "one again"), "one again")
        # A new connection: the new config (upstream B).
        new = await self.connect(port)
        third = await c.H2WebSocket.open(new, "/echo", scheme="http")
        self.assertEqual(await self.exchange(third, "three"), "B:three")

        # Once more, with the old connection now two generations behind.
        rh.write_config(gw, config(a))
        await rh.sighup(gw, rh.RELOADED)
        fourth = await c.H2WebSocket.open(old, "/echo", scheme="http")
        self.assertEqual(await self.exchange(fourth, "four"), "four")
        self.assertEqual(await self.exchange(third, "three again"), "B:three again")
        for ws in (first, second, fourth, third):
            await ws.close(1000)
        self.assertEqual(len(a.conns), 3)
        self.assertEqual(len(b.conns), 1)
        self.assertNotIn("has no generation", gw.stderr_text())


if __name__ == "__main__":
    h.main()
