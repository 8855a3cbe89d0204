"""The route's max_message_rate: data messages per second a client may send, and its
Pings and Pongs in a bucket of their own (10x the rate and burst, at least 10).

A python3-websockets 10.4 client that sends faster than the rate gets Close 1008
"message rate exceeded" (RFC 6455 7.4.1: a policy violation), the backend gets 1001 and
never sees the message over the rate; a client that stays under the rate keeps its
connection and all its messages arrive. A Ping flood gets 1008 "control frame rate
exceeded" the same way; Pings within their allowance do not spend the data budget and
reach the backend, whose Pongs come back.
"""

import asyncio
import os
import sys
import time

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class MessageRate(h.GatewayCase):
    async def start(self, rate: int, burst: int):
        self.backend = await self.start_backend(h.record_handler, compression=None)
        self.gw = await self.start_gateway(h.simple_config(
            h.free_port(), [self.backend.address],
            route={"max_message_rate": rate, "max_message_burst": burst}))

    async def test_faster_than_the_rate_gets_1008(self):
        await self.start(rate=5, burst=5)
        async with h.ws_connect(self.gw.port, compression=None) as ws:
            # 30 messages at once: the burst of 5 passes, the 6th breaks the rate.
            sent = 0
            try:
                for i in range(30):
                    await ws.send(f"m{i}")
                    sent += 1
            except websockets.exceptions.ConnectionClosed:
                pass
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), 10)
        self.assertIsNotNone(cm.exception.rcvd, "the client got no Close frame")
        self.assertEqual((cm.exception.rcvd.code, cm.exception.rcvd.reason),
                         (1008, "message rate exceeded"))
        rec = (await self.backend.wait_conns(1))[0]
        await self.backend.wait_done(rec)
        self.assertEqual(rec.messages, [f"m{i}" for i in range(5)])
        self.assertEqual((rec.close_code, rec.close_reason),
                         (1001, "client message rate exceeded"))
        line = await self.gw.wait_access_line(lambda f: f.get("route") == "*/echo",
                                              "the connection")
        self.assertEqual((line["close_code"], line["closed_by"], line["reason"]),
                         ("1008", "gateway", "message rate exceeded"), line)

    async def test_under_the_rate_stays_connected(self):
        await self.start(rate=10, burst=2)
        async with h.ws_connect(self.gw.port, compression=None) as ws:
            # 4 messages a second for 2.5 s: well under 10/s, never two at once.
            started = time.monotonic()
            for i in range(10):
                await ws.send(f"slow{i}")
                await asyncio.sleep(0.25)
            self.assertIsNone(ws.close_code)
            self.assertGreaterEqual(time.monotonic() - started, 2.5)
            rec = (await self.backend.wait_conns(1))[0]
            await h.wait_until(lambda: len(rec.messages) == 10, 10, "all 10 messages")
            self.assertEqual(rec.messages, [f"slow{i}" for i in range(10)])
        await self.backend.wait_done(rec)
        self.assertEqual(rec.close_code, 1000)

    async def test_ping_flood_gets_1008(self):
        await self.start(rate=5, burst=5)  # Pings and Pongs: 50/s, 50 at once
        pongs = []
        async with h.ws_connect(self.gw.port, compression=None) as ws:
            try:
                for i in range(500):
                    # A unique 4-byte payload each (10 bytes on the wire, masked);
                    # the Pongs are not awaited: a flood.
                    pongs.append(await ws.ping(b"%04d" % i))
            except websockets.exceptions.ConnectionClosed:
                pass
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), 10)
        # Pong waiters the close left unanswered end with ConnectionClosed: collect them.
        await asyncio.gather(*pongs, return_exceptions=True)
        self.assertIsNotNone(cm.exception.rcvd, "the client got no Close frame")
        self.assertEqual((cm.exception.rcvd.code, cm.exception.rcvd.reason),
                         (1008, "control frame rate exceeded"))
        rec = (await self.backend.wait_conns(1))[0]
        await self.backend.wait_done(rec)
        self.assertEqual(rec.messages, [])
        self.assertEqual((rec.close_code, rec.close_reason),
                         (1001, "client message rate exceeded"))
        line = await self.gw.wait_access_line(lambda f: f.get("route") == "*/echo",
                                              "the connection")
        self.assertEqual((line["close_code"], line["closed_by"], line["reason"]),
                         ("1008", "gateway", "control frame rate exceeded"), line)
        # The burst of 50 Pings reached the backend, plus the few the bucket refilled
        # while the flood was read; never the 500.
        self.assertGreaterEqual(int(line["c2u_bytes"]), 50 * 10, line)
        self.assertLess(int(line["c2u_bytes"]), 100 * 10, line)

    async def test_pings_do_not_spend_the_message_budget(self):
        await self.start(rate=5, burst=5)
        async with h.ws_connect(self.gw.port, compression=None) as ws:
            # The whole data burst at once, then 20 Pings, each answered by the backend.
            for i in range(5):
                await ws.send(f"m{i}")
            for i in range(20):
                pong = await ws.ping(b"%04d" % i)
                await asyncio.wait_for(pong, 10)
            self.assertIsNone(ws.close_code)
            rec = (await self.backend.wait_conns(1))[0]
            await h.wait_until(lambda: len(rec.messages) == 5, 10, "all 5 messages")
            self.assertEqual(rec.messages, [f"m{i}" for i in range(5)])
        await self.backend.wait_done(rec)
        self.assertEqual(rec.close_code, 1000)


if __name__ == "__main__":
    h.main()
