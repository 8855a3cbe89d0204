"""HTTP/1.1 client -> two HTTP/1.1 upstream servers: session affinity by the gateway's
cookie (issue 15; upstream affinity_cookie).

The servers are python3-websockets servers that also answer plain requests for /page
(as an app serving its page and its WebSocket on one port would). Without the cookie,
round robin spreads requests and each response carries Set-Cookie naming the server that
answered, opaquely; requests and WebSocket upgrades carrying it go to that server; once
that server is down, another one serves and the cookie is replaced.
"""

import http
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def page(name):
    def process_request(path, _headers):
        if path.startswith("/page"):
            return http.HTTPStatus.OK, [("X-Server", name), ("Content-Type", "text/plain")], \
                name.encode()
        return None
    return process_request


class HttpAffinity(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.a = await self.start_backend(process_request=page("a"))
        self.b = await self.start_backend(process_request=page("b"))
        self.port = h.free_port()
        config = (f'workers = 1\naccess_log = "-"\n\n'
                  f'[[listener]]\naddress = "127.0.0.1:{self.port}"\n\n'
                  f'[[upstream]]\nname = "app"\nservers = ["{self.a.address}", "{self.b.address}"]\n'
                  f'balancer = "round_robin"\naffinity_cookie = "wsg"\n\n'
                  f'[[route]]\npath = "/"\nupstream = "app"\n')
        self.gw = await self.start_gateway(config)

    async def get(self, cookie=None):
        req = f"GET /page HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n"
        if cookie:
            req += f"Cookie: other=1; wsg={cookie}\r\n"
        r = await h.http_exchange("127.0.0.1", self.port, (req + "\r\n").encode())
        self.assertEqual(r.status, 200, r.raw)
        set_cookie = r.header("Set-Cookie")
        value = None
        if set_cookie is not None:
            first = set_cookie.split(";")[0]
            self.assertTrue(first.startswith("wsg="), set_cookie)
            value = first[len("wsg="):]
        return r.header("X-Server"), value

    async def test_cookie_keeps_requests_and_upgrades_on_one_server(self):
        # Round robin without the cookie: both servers answer, each names itself.
        cookie_of = {}
        for _ in range(4):
            server, value = await self.get()
            self.assertIsNotNone(value, "no affinity cookie on the first response")
            cookie_of.setdefault(server, value)
            self.assertEqual(cookie_of[server], value, "one server, two cookie values")
        self.assertEqual(set(cookie_of), {"a", "b"})
        self.assertNotEqual(cookie_of["a"], cookie_of["b"])
        for value in cookie_of.values():  # opaque: not the address
            self.assertNotIn("127.0.0.1", value)
            self.assertNotIn(str(self.a.port), value)
            self.assertNotIn(str(self.b.port), value)

        # With the cookie: always that server, and no new cookie.
        for want in ("a", "b"):
            for _ in range(5):
                server, value = await self.get(cookie_of[want])
                self.assertEqual((server, value), (want, None))

        # The WebSocket upgrade with the cookie goes to the same server.
        before = (len(self.a.conns), len(self.b.conns))
        for _ in range(3):
            async with h.ws_connect(self.port, "/ws",
                                    extra_headers={"Cookie": f"wsg={cookie_of['b']}"}) as ws:
                await ws.send("hi")
                self.assertEqual(await ws.recv(), "hi")
        self.assertEqual((len(self.a.conns), len(self.b.conns)), (before[0], before[1] + 3))

        # The server is gone: another one serves and the cookie moves with it.
        self.a.server.close()
        await self.a.server.wait_closed()
        server, value = await self.get(cookie_of["a"])
        self.assertEqual((server, value), ("b", cookie_of["b"]))
        line = await self.gw.wait_access_line(
            lambda f: f.get("path") == "/page" and f.get("upstream") == self.b.address,
            "a request served by b")
        self.assertEqual(line["status"], "200")

    async def test_websocket_101_carries_the_cookie_when_the_client_has_none(self):
        # A client whose first request is the upgrade learns its server from the 101.
        async with h.ws_connect(self.port, "/ws") as ws:
            set_cookie = ws.response_headers.get("Set-Cookie")
            await ws.send("hi")
            self.assertEqual(await ws.recv(), "hi")
        self.assertIsNotNone(set_cookie, "no affinity cookie on the 101")
        self.assertTrue(set_cookie.startswith("wsg="), set_cookie)
        self.assertIn("Path=/", set_cookie)
        value = set_cookie.split(";")[0][len("wsg="):]
        first = "a" if len(self.a.conns) == 1 else "b"
        self.assertEqual(len(self.a.conns) + len(self.b.conns), 1)
        # The page request with it goes to the same server, and gets no new cookie.
        self.assertEqual(await self.get(value), (first, None))
        # Upgrades carrying it: the same server, no Set-Cookie on their 101s.
        for _ in range(3):
            async with h.ws_connect(self.port, "/ws",
                                    extra_headers={"Cookie": f"wsg={value}"}) as ws:
                self.assertIsNone(ws.response_headers.get("Set-Cookie"))
        conns = self.a.conns if first == "a" else self.b.conns
        self.assertEqual(len(conns), 4)
        # A stale value (no such server) is replaced on the 101.
        async with h.ws_connect(self.port, "/ws",
                                extra_headers={"Cookie": "wsg=0000000000000000"}) as ws:
            replaced = ws.response_headers.get("Set-Cookie")
        self.assertIsNotNone(replaced)
        self.assertNotIn("wsg=0000000000000000", replaced)


if __name__ == "__main__":
    h.main()
