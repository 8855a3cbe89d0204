"""HTTP/1.1 client -> HTTP/1.1 backend: the upgrade request the backend receives.

X-Forwarded-For/-Proto/-Host are added; end-to-end headers (Sec-WebSocket-Protocol,
Sec-WebSocket-Extensions, Origin, Cookie, others) are forwarded; hop-by-hop headers
(RFC 9110 7.6.1) are not.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

HOP_BY_HOP = [("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Trailer", "X-T"),
              ("Proxy-Connection", "keep-alive")]


class ForwardedHeaders(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend(subprotocols=["superchat"])
        self.gw = await self.start_gateway(h.simple_config(h.free_port(),
                                                           [self.backend.address]))

    async def upgrade_with(self, host, extra, connection="Upgrade"):
        key = h.make_key()
        req = h.upgrade_request("/echo/room?x=1", host, key=key, extra=extra,
                                connection=connection)
        ws = await h.RawWebSocket.connect("127.0.0.1", self.gw.port, request=req)
        async with ws:
            self.assertEqual(ws.response.header("Sec-WebSocket-Accept"), h.accept_for(key))
            rec = (await self.backend.wait_conns(1))[-1]
            return ws.response, rec

    async def test_forwarded_and_end_to_end_headers(self):
        # (X-Request-Id is the gateway's: test_h1_h1_access_log.py.)
        extra = [("Origin", "https://app.example"),
                 ("Cookie", "session=abc123; theme=dark"),
                 ("Sec-WebSocket-Protocol", "chat, superchat"),
                 ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                 ("User-Agent", "wsgate-integration/1"),
                 ("Authorization", "Bearer t0ken")]
        response, rec = await self.upgrade_with("chat.example", extra)
        self.assertEqual(rec.path, "/echo/room?x=1", "request target changed")
        self.assertEqual(rec.header("X-Forwarded-For"), "127.0.0.1")
        self.assertEqual(rec.header("X-Forwarded-Proto"), "http")
        self.assertEqual(rec.header("X-Forwarded-Host"), "chat.example")
        for name, value in extra:
            if name == "Sec-WebSocket-Extensions":
                continue
            with self.subTest(header=name):
                self.assertEqual(rec.headers(name), [value], f"{name} not forwarded intact")
        self.assertIn("permessage-deflate", rec.header("Sec-WebSocket-Extensions") or "")
        # The backend's choices come back to the client in the relayed 101.
        self.assertEqual(response.header("Sec-WebSocket-Protocol"), "superchat")
        self.assertEqual(rec.subprotocol, "superchat")
        self.assertIn("permessage-deflate", response.header("Sec-WebSocket-Extensions") or "")
        self.assertTrue(rec.extensions, "backend did not negotiate the forwarded extension")

    async def test_hop_by_hop_headers_not_forwarded(self):
        _, rec = await self.upgrade_with("127.0.0.1", HOP_BY_HOP + [("X-Kept", "yes")])
        for name, _ in HOP_BY_HOP:
            with self.subTest(header=name):
                self.assertEqual(rec.headers(name), [], f"hop-by-hop {name} was forwarded")
        self.assertEqual(rec.headers("X-Kept"), ["yes"])
        # The gateway's own upgrade request carries exactly one Upgrade/Connection pair.
        self.assertEqual([v.lower() for v in rec.headers("Upgrade")], ["websocket"])
        self.assertEqual(len(rec.headers("Connection")), 1)
        self.assertIn("upgrade", rec.header("Connection").lower())

    async def test_headers_named_in_connection_not_forwarded(self):
        # RFC 9110 7.6.1: a header named in Connection is hop-by-hop.
        _, rec = await self.upgrade_with("127.0.0.1", [("X-Hop", "secret"), ("X-Kept", "yes")],
                                         connection="Upgrade, X-Hop")
        self.assertEqual(rec.headers("X-Hop"), [], "header named in Connection forwarded")
        self.assertEqual(rec.headers("X-Kept"), ["yes"])
        self.assertNotIn("x-hop", (rec.header("Connection") or "").lower())

    async def test_websockets_client_headers_reach_backend(self):
        async with h.ws_connect(self.gw.port, origin="https://web.example",
                                subprotocols=["chat", "superchat"],
                                extra_headers={"Cookie": "k=v"}) as ws:
            self.assertEqual(ws.subprotocol, "superchat")
            await ws.send("hi")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hi")
        rec = self.backend.conns[0]
        self.assertEqual(rec.header("Origin"), "https://web.example")
        self.assertEqual(rec.header("Cookie"), "k=v")
        self.assertEqual(rec.header("X-Forwarded-For"), "127.0.0.1")
        self.assertEqual(rec.header("X-Forwarded-Host"), f"127.0.0.1:{self.gw.port}")


if __name__ == "__main__":
    h.main()
