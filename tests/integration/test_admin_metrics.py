"""HTTP/1.1 client -> HTTP/1.1 backend, observed through the admin /metrics endpoint.

A known workload (N connections, M messages each way, fixed sizes) must move every
counter by exactly what it did: connections, handshakes, frames, messages and wire
bytes by direction and opcode, closes by side and code, both histograms. Live
connections' traffic is visible before they close. Also /healthz, and /ready turning
503 while draining.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

N_CONNS = 4
N_MSGS = 5
PAYLOAD = 100  # < 126: 2-byte header, +4 for the client's mask
C2U_FRAME = PAYLOAD + 6
U2C_FRAME = PAYLOAD + 2


class AdminMetrics(h.GatewayCase):
    async def start(self, route=None, **kw):
        backend = await self.start_backend(compression=None)
        self.admin_port = h.free_port()
        text = h.make_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                             [{"name": "echo-route", "host": "*", "path": "/echo",
                               "upstream": "echo", **(route or {})}],
                             listener={"name": "public"}, **kw)
        gw = await self.start_gateway(ac.with_admin(text, self.admin_port))
        admin = ac.Admin(self.admin_port)
        await admin.wait_up()
        return backend, gw, admin

    async def test_known_workload_moves_counters_by_exact_deltas(self):
        backend, gw, admin = await self.start()
        labels = dict(listener="public", route="echo-route", upstream="echo",
                      server=backend.address, protocol="h1")
        before = await admin.metrics()

        conns = []
        for _ in range(N_CONNS):
            conns.append(await h.ws_connect(gw.port, compression=None).__aenter__())
        try:
            for ws in conns:
                for i in range(N_MSGS):
                    await ws.send(chr(ord("a") + i) * PAYLOAD)
                    self.assertEqual(len(await asyncio.wait_for(ws.recv(), 10)), PAYLOAD)
            # Live: the relays are still open; their traffic is already counted.
            live = await admin.metrics()
            d = lambda name, **ls: live.value(name, **ls) - before.value(name, **ls)  # noqa
            self.assertEqual(d("wsgate_connections_active", **labels), N_CONNS)
            self.assertEqual(d("wsgate_connections_total", **labels), N_CONNS)
            self.assertEqual(d("wsgate_messages_total", direction="client_to_upstream",
                               opcode="text"), N_CONNS * N_MSGS)
            self.assertEqual(d("wsgate_bytes_total", direction="upstream_to_client",
                               opcode="text"), N_CONNS * N_MSGS * U2C_FRAME)
        finally:
            for ws in conns:
                await ws.close(1000)

        after = await admin.wait_metrics(
            lambda m: m.value("wsgate_connections_active", **labels) == 0
            and m.value("wsgate_closes_total") - before.value("wsgate_closes_total") >= N_CONNS,
            "every connection to end")
        d = lambda name, **ls: after.value(name, **ls) - before.value(name, **ls)  # noqa
        self.assertEqual(d("wsgate_connections_total", **labels), N_CONNS)
        self.assertEqual(d("wsgate_handshakes_total", listener="public", status="101"), N_CONNS)
        for direction, frame in (("client_to_upstream", C2U_FRAME),
                                 ("upstream_to_client", U2C_FRAME)):
            self.assertEqual(d("wsgate_messages_total", direction=direction, opcode="text"),
                             N_CONNS * N_MSGS, direction)
            self.assertEqual(d("wsgate_messages_total", direction=direction, opcode="binary"),
                             0, direction)
            self.assertEqual(d("wsgate_frames_total", direction=direction, opcode="text"),
                             N_CONNS * N_MSGS, direction)
            self.assertEqual(d("wsgate_bytes_total", direction=direction, opcode="text"),
                             N_CONNS * N_MSGS * frame, direction)
            # One Close frame each way per connection.
            self.assertEqual(d("wsgate_frames_total", direction=direction, opcode="close"),
                             N_CONNS, direction)
        # The client's Close 1000 (2-byte code + 6-byte masked header), the echo of it.
        self.assertEqual(d("wsgate_bytes_total", direction="client_to_upstream",
                           opcode="close"), N_CONNS * 8)
        self.assertEqual(d("wsgate_closes_total", side="client", code="1000"), N_CONNS)
        self.assertEqual(d("wsgate_closes_total"), N_CONNS)
        self.assertEqual(d("wsgate_connection_duration_seconds_count"), N_CONNS)
        self.assertEqual(d("wsgate_handshake_duration_seconds_count"), N_CONNS)
        self.assertEqual(after.value("wsgate_handshake_duration_seconds_bucket", le="+Inf")
                         - before.value("wsgate_handshake_duration_seconds_bucket", le="+Inf"),
                         N_CONNS)
        self.assertEqual(after.value("wsgate_workers"), 2)
        self.assertEqual(after.value("wsgate_scrape_workers_missing"), 0)

    async def test_refused_handshakes_by_status_and_gateway_closes(self):
        _, gw, admin = await self.start(route={"max_message_size": "1KiB"}, workers=1)
        before = await admin.metrics()
        for _ in range(2):
            conn = await h.RawConn.open("127.0.0.1", gw.port)
            async with conn:
                await conn.send(h.upgrade_request("/nowhere", "127.0.0.1"))
                data, _ = await conn.read_until_eof(10)
            self.assertEqual(h.response_from(data, True, 0).status, 404)
        # A message over max_message_size: the gateway closes with 1009.
        async with h.ws_connect(gw.port, "/echo", compression=None) as ws:
            await ws.send(b"x" * 2048)
            await asyncio.wait_for(ws.wait_closed(), 15)
        self.assertEqual(ws.close_code, 1009)
        after = await admin.wait_metrics(
            lambda m: m.value("wsgate_closes_total", side="gateway", code="1009")
            > before.value("wsgate_closes_total", side="gateway", code="1009"),
            "the 1009 close to be counted")
        d = lambda name, **ls: after.value(name, **ls) - before.value(name, **ls)  # noqa
        self.assertEqual(d("wsgate_handshakes_total", listener="public", status="404"), 2)
        self.assertEqual(d("wsgate_handshakes_total", listener="public", status="101"), 1)
        self.assertEqual(d("wsgate_closes_total", side="gateway", code="1009"), 1)
        self.assertEqual(d("wsgate_messages_total", direction="client_to_upstream"), 0)

    async def test_process_metrics_and_health(self):
        _, gw, admin = await self.start()
        m = await admin.metrics()
        rss_kib = gw.vmrss_kib()
        self.assertGreater(m.value("process_resident_memory_bytes"), 0)
        # Same process, read moments apart: within a factor of two.
        self.assertLess(abs(m.value("process_resident_memory_bytes") / 1024 - rss_kib),
                        rss_kib)
        self.assertGreater(m.value("process_open_fds"), 3)
        self.assertGreater(m.value("process_start_time_seconds"), 1.6e9)
        self.assertTrue(m.has("process_cpu_seconds_total"))
        status, _, body = await admin.get("/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        status, _, body = await admin.get("/ready")
        self.assertEqual((status, body), (200, b"ready\n"))
        status, _, _ = await admin.get("/nope")
        self.assertEqual(status, 404)

    async def test_ready_is_503_while_draining(self):
        _, gw, admin = await self.start(drain_timeout="20s")
        # A client that never answers the gateway's Close keeps the drain going.
        raw = await h.RawWebSocket.connect("127.0.0.1", gw.port, "/echo")
        try:
            await admin.wait_metrics(lambda m: m.value("wsgate_connections_active") == 1,
                                     "the connection to be relayed")
            gw.send_signal(h.signal.SIGTERM)
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                status, _, body = await admin.get("/ready")
                if status == 503:
                    break
                self.assertLess(asyncio.get_running_loop().time(), deadline, "never 503")
                await asyncio.sleep(h.POLL_INTERVAL)
            self.assertEqual(body, b"draining\n")
            # The data endpoints still answer during the drain.
            m = await admin.metrics()
            self.assertEqual(m.value("wsgate_connections_active"), 1)
        finally:
            raw.conn.close()


if __name__ == "__main__":
    h.main()
