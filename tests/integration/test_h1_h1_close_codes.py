"""HTTP/1.1 client -> HTTP/1.1 backend: the close handshake relayed both ways.

The code and reason one side sends are the code and reason the other side receives.
"""

import asyncio
import os
import sys

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class ClientCloses(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()
        self.gw = await self.start_gateway(h.simple_config(h.free_port(),
                                                           [self.backend.address]))

    async def client_close(self, code, reason):
        async with h.ws_connect(self.gw.port) as ws:
            await ws.send("before close")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "before close")
            await ws.close(code, reason)
        rec = (await self.backend.wait_conns(1))[-1]
        await self.backend.wait_done(rec)
        self.assertEqual(rec.messages, ["before close"], "backend handler did not run")
        self.assertEqual((rec.close_code, rec.close_reason), (code, reason))
        # The backend echoes the close; the client sees the same code back.
        self.assertEqual(ws.close_code, code)

    async def test_client_closes_4001_bye(self):
        await self.client_close(4001, "bye")

    async def test_client_closes_1000(self):
        await self.client_close(1000, "")

    async def test_client_closes_3000_long_reason(self):
        await self.client_close(3000, "r" * 123)  # 2 + 123 = the 125-byte control limit


class BackendCloses(h.GatewayCase):
    async def backend_close(self, code, reason):
        backend = await self.start_backend(h.close_handler(code, reason, after_messages=1))
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address]))
        async with h.ws_connect(gw.port) as ws:
            await ws.send("one")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "one")
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), 15)
            await asyncio.wait_for(ws.wait_closed(), 15)
        self.assertIsNotNone(cm.exception.rcvd, "client got no Close frame")
        self.assertEqual((cm.exception.rcvd.code, cm.exception.rcvd.reason), (code, reason))
        self.assertEqual(ws.close_code, code)
        rec = backend.conns[0]
        await backend.wait_done(rec)
        self.assertEqual(rec.messages, ["one"])
        # The client echoed the code; it reaches the backend through the gateway.
        self.assertEqual(rec.close_code, code)

    async def test_backend_closes_1011(self):
        await self.backend_close(1011, "backend failed")

    async def test_backend_closes_1000(self):
        await self.backend_close(1000, "done")

    async def test_backend_closes_4999(self):
        await self.backend_close(4999, "")


if __name__ == "__main__":
    h.main()
