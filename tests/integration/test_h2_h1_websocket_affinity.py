"""HTTP/2 client (RFC 8441 extended CONNECT, h2c) -> two HTTP/1.1 WebSocket upstream
servers with the gateway's affinity cookie (issue 15; upstream affinity_cookie).

The 200 that opens a WebSocket stream carries Set-Cookie naming the server that accepted
it when the request did not carry that value; a stream opened with the cookie goes to
the same server and gets no new one.
"""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402


class H2WebSocketAffinity(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.a = await self.start_backend()
        self.b = await self.start_backend()
        port = h.free_port()
        text = (f'workers = 1\n\n[[listener]]\naddress = "127.0.0.1:{port}"\nh2c = true\n\n'
                f'[[upstream]]\nname = "app"\nservers = ["{self.a.address}", "{self.b.address}"]\n'
                f'balancer = "round_robin"\naffinity_cookie = "wsg"\n\n'
                f'[[route]]\npath = "/"\nupstream = "app"\n')
        self.gw = await self.start_gateway(text)
        self.conn = await c.H2Conn.open("127.0.0.1", self.gw.port, tls=False)
        self.addAsyncCleanup(self.conn.close)

    async def echo(self, ws):
        await ws.send(h.OP_TEXT, b"hi")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"hi"))

    async def test_200_carries_the_cookie_when_the_stream_has_none(self):
        ws = await c.H2WebSocket.open(self.conn, "/ws", scheme="http")
        await self.echo(ws)
        set_cookie = ws.st.header("set-cookie")
        self.assertIsNotNone(set_cookie, f"no affinity cookie on the 200: {ws.st.headers}")
        self.assertTrue(set_cookie.startswith("wsg="), set_cookie)
        value = set_cookie.split(";")[0][len("wsg="):]
        self.assertEqual(len(self.a.conns) + len(self.b.conns), 1)
        first = self.a if len(self.a.conns) == 1 else self.b
        for _ in range(3):
            ws = await c.H2WebSocket.open(self.conn, "/ws", scheme="http",
                                          extra=[("cookie", f"wsg={value}")])
            await self.echo(ws)
            self.assertIsNone(ws.st.header("set-cookie"), ws.st.headers)
        self.assertEqual(len(first.conns), 4)


if __name__ == "__main__":
    h.main()
