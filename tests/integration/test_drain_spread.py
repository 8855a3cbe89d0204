"""HTTP/1.1 clients -> HTTP/1.1 backend: SIGTERM with drain_spread closes the WebSockets
evenly over the window.

100 open WebSockets, drain_spread = 2s, drain_timeout = 10s, 2 workers. After SIGTERM
every client receives Close 1001 from wsgate; the moments the Closes arrive are spread
over the window (not bunched at its start), all before drain_timeout; /ready says 503, the
listeners close and a handshake in progress gets 503, all from the first moment; the
process exits 0. The measured distribution is printed.
"""

import asyncio
import os
import signal
import statistics
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import admin_client as ac  # noqa: E402
import websockets  # noqa: E402

CLIENTS = 100
SPREAD = 2.0
DRAIN_TIMEOUT = 10.0


class DrainSpread(h.GatewayCase):
    async def test_h1_h1_sigterm_spreads_close_1001_over_drain_spread(self):
        backend = await self.start_backend()
        admin_port = h.free_port()
        config = (f'drain_spread = "{SPREAD:g}s"\n'
                  + h.simple_config(h.free_port(), [backend.address],
                                    drain_timeout=f"{DRAIN_TIMEOUT:g}s"))
        gw = await self.start_gateway(ac.with_admin(config, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()

        clients = []
        for i in range(CLIENTS):
            ws = await h.ws_connect(gw.port)
            self.addAsyncCleanup(ws.close)
            clients.append(ws)
        for i, ws in enumerate(clients):  # every relay is up before the signal
            await ws.send(f"c{i}")
        for i, ws in enumerate(clients):
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"c{i}")
        await backend.wait_conns(CLIENTS)

        closed_at: list = [None] * CLIENTS

        async def watch(i, ws):
            try:
                while True:
                    await ws.recv()
            except websockets.exceptions.ConnectionClosed:
                closed_at[i] = time.monotonic()

        # A client still sending its request head when the drain starts gets 503 at once.
        slow = await h.RawConn.open("127.0.0.1", gw.port)
        self.addCleanup(slow.close)
        await slow.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await asyncio.sleep(0.1)

        async def read_answer():
            data, _ = await slow.read_until_eof(5.0)
            return data, time.monotonic()

        answer_task = asyncio.create_task(read_answer())
        watchers = [asyncio.create_task(watch(i, ws)) for i, ws in enumerate(clients)]
        signalled = time.monotonic()
        gw.send_signal(signal.SIGTERM)

        # /ready turns 503 as soon as the main thread has taken the signal, while
        # connections remain. The signal is delivered asynchronously: poll (bounded)
        # rather than assume the first request comes after it (on a slow machine it may
        # not).
        deadline = time.monotonic() + 5
        while True:
            status, _, _ = await admin.get("/ready")
            if status == 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(h.POLL_INTERVAL)
        asked_at = time.monotonic() - signalled
        remaining = sum(1 for t in closed_at if t is None)
        self.assertEqual(status, 503, "/ready within 5 s of SIGTERM")
        self.assertGreater(remaining, 0, "every connection closed before /ready was asked")
        # No new connection is accepted from the first moment either.
        await h.wait_until(lambda: not h.tcp_accepts(gw.host, gw.port, timeout=0.2), 1.0,
                           "the listeners to close")
        answer, answered = await answer_task
        answered_at = answered - signalled
        self.assertTrue(answer.startswith(b"HTTP/1.1 503 "), answer[:200])
        self.assertLess(answered_at, 0.5 * SPREAD, "the handshake waited for the spread")

        await asyncio.wait_for(asyncio.gather(*watchers), DRAIN_TIMEOUT + 5)
        codes = [ws.close_code for ws in clients]
        self.assertEqual(codes, [1001] * CLIENTS, "every client gets Close 1001")
        rc = await gw.wait_exit(DRAIN_TIMEOUT + 5)
        self.assertEqual(rc, 0, gw.describe())

        offsets = sorted(t - signalled for t in closed_at)
        deciles = statistics.quantiles(offsets, n=10)
        first_tenth = sum(1 for t in offsets if t < 0.1 * SPREAD)
        print(f"\n{CLIENTS} closes after SIGTERM (drain_spread {SPREAD:g}s): "
              f"min {offsets[0]:.3f}s median {statistics.median(offsets):.3f}s "
              f"max {offsets[-1]:.3f}s; deciles "
              + " ".join(f"{d:.3f}" for d in deciles)
              + f"; {first_tenth} in the first 10% of the window; "
              f"/ready 503 at {asked_at:.3f}s with {remaining} still open; pending handshake "
              f"answered 503 at {answered_at:.3f}s", file=sys.stderr)
        self.assertLess(first_tenth, 0.2 * CLIENTS, "closes bunched at the start")
        self.assertGreater(offsets[-1], 0.7 * SPREAD, "the last close came too early")
        self.assertLess(offsets[-1], DRAIN_TIMEOUT, "closes after drain_timeout")
        # Even: each tenth of the window has roughly a tenth of the closes.
        per_tenth = [sum(1 for t in offsets if k * SPREAD / 10 <= t < (k + 1) * SPREAD / 10)
                     for k in range(10)]
        print(f"closes per tenth of the window: {per_tenth}", file=sys.stderr)
        self.assertLessEqual(max(per_tenth), 0.25 * CLIENTS, f"uneven: {per_tenth}")

        # The backend side of every connection got Close 1001 too.
        for rec in backend.conns:
            await backend.wait_done(rec)
        self.assertEqual(sorted({rec.close_code for rec in backend.conns}), [1001])


if __name__ == "__main__":
    h.main()
