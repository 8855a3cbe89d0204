"""HTTP/1.1 client -> HTTP/1.1 backend: what the client sees when the backend side fails.

A backend refusing the handshake is relayed with its status; a closed port is 502; a
backend that accepts TCP and never answers is 504 after upstream_handshake_timeout; with
one of two servers down every connection still succeeds.
"""

import asyncio
import os
import sys
import time

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class BackendRefuses(h.GatewayCase):
    async def test_backend_refusal_status_relayed(self):
        for status in (401, 403, 404):
            with self.subTest(status=status):
                backend = await self.start_backend(
                    process_request=h.reject_request(status, f"nope {status}\n".encode()))
                gw = await self.start_gateway(h.simple_config(h.free_port(),
                                                              [backend.address]))
                with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                    async with h.ws_connect(gw.port):
                        pass
                self.assertEqual(cm.exception.status_code, status)
                self.assertEqual(len(backend.requests), 1, "backend never saw the request")
                self.assertEqual(backend.conns, [])
                # The same through a raw socket: status line and the connection's end.
                resp = await h.http_exchange("127.0.0.1", gw.port,
                                             h.upgrade_request("/echo", "127.0.0.1"))
                self.assertEqual(resp.status, status, resp.raw[:300])
                self.assertTrue(resp.closed, "connection left open after a refused upgrade")
                self.assertEqual(len(backend.requests), 2)
                await gw.stop_async()


class BackendUnreachable(h.GatewayCase):
    async def test_closed_port_502(self):
        dead = h.free_port()  # nothing listens here
        gw = await self.start_gateway(h.simple_config(h.free_port(), [f"127.0.0.1:{dead}"]))
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
            async with h.ws_connect(gw.port):
                pass
        self.assertEqual(cm.exception.status_code, 502)
        resp = await h.http_exchange("127.0.0.1", gw.port,
                                     h.upgrade_request("/echo", "127.0.0.1"), timeout=20)
        h.assert_error_response(self, resp, 502, "closed backend port")

    async def test_silent_backend_504_after_upstream_handshake_timeout(self):
        async with h.SilentServer() as silent:
            gw = await self.start_gateway(h.simple_config(
                h.free_port(), [silent.address],
                route={"upstream_handshake_timeout": "1s"}))
            resp = await h.http_exchange("127.0.0.1", gw.port,
                                         h.upgrade_request("/echo", "127.0.0.1"), timeout=20)
            h.assert_error_response(self, resp, 504, "silent backend")
            self.assertGreaterEqual(resp.elapsed, 0.9, "504 before the 1s timeout")
            self.assertLess(resp.elapsed, 8.0, "504 long after the 1s timeout")
            self.assertGreaterEqual(silent.accepted, 1, "gateway never connected to the backend")
            self.assertIn(b"GET /echo HTTP/1.1\r\n", silent.received)
            self.assertIn(b"upgrade: websocket", silent.received.lower())
            await gw.stop_async()

    async def test_one_of_two_servers_down_all_succeed(self):
        backend = await self.start_backend()
        dead = h.free_port()
        gw = await self.start_gateway(h.simple_config(
            h.free_port(), [backend.address, f"127.0.0.1:{dead}"]))
        for i in range(20):
            with self.subTest(connection=i):
                async with h.ws_connect(gw.port) as ws:
                    await ws.send(f"conn {i}")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"conn {i}")
        self.assertEqual(len(backend.conns), 20)

    async def test_round_robin_over_two_live_servers(self):
        b1 = await self.start_backend()
        b2 = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [b1.address, b2.address],
                                                      workers=1))
        for i in range(10):
            async with h.ws_connect(gw.port) as ws:
                await ws.send("x")
                await asyncio.wait_for(ws.recv(), 10)
        self.assertEqual(len(b1.conns) + len(b2.conns), 10)
        self.assertEqual((len(b1.conns), len(b2.conns)), (5, 5),
                         "round robin with one worker should alternate")


if __name__ == "__main__":
    h.main()
