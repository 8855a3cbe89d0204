"""CONNECT tunnels in the admin view and on shutdown: a live tunnel is a /connections row
(protocol connect, target, server, bytes each way); metrics carry protocol="connect" and
wsgate_tunnel_bytes_total; on SIGTERM an established tunnel keeps working until
drain_timeout, then it is closed.
"""

import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402


class Echo:
    async def _on_conn(self, reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()


async def echo_round(sock, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, data)
    got = b""
    while len(got) < len(data):
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
        if not chunk:
            break
        got += chunk
    return got


class ConnectH1Accounting(h.GatewayCase):
    async def test_h1_connect_connections_row_and_metrics(self):
        async with Echo() as echo:
            admin_port = h.free_port()
            gw = await self.start_gateway(ac.with_admin(ch.connect_config(
                h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [echo.port]}],
                listener={"name": "proxy"}), admin_port))
            admin = ac.Admin(admin_port)
            await admin.wait_up()
            sock, head = await ch.raw_connect(gw.port, f"127.0.0.1:{echo.port}")
            try:
                self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
                self.assertEqual(await echo_round(sock, b"x" * 1000), b"x" * 1000)
                table = await admin.connections()
                rows = [r for r in table["connections"] if r["protocol"] == "connect"]
                self.assertEqual(len(rows), 1, table)
                row = rows[0]
                self.assertEqual(row["state"], "relaying")
                self.assertEqual(row["target"], f"127.0.0.1:{echo.port}")
                self.assertEqual(row["server"], f"127.0.0.1:{echo.port}")
                self.assertEqual(row["client_to_upstream"]["bytes"], 1000)
                self.assertEqual(row["upstream_to_client"]["bytes"], 1000)
                m = await admin.metrics()
                self.assertEqual(m.value("wsgate_connections_active", listener="proxy",
                                         protocol="connect"), 1)
                self.assertEqual(m.value("wsgate_tunnel_bytes_total",
                                         direction="client_to_upstream"), 1000)
                self.assertEqual(m.value("wsgate_handshakes_total", listener="proxy",
                                         status="200"), 1)
            finally:
                sock.close()
            m = await admin.wait_metrics(
                lambda m: m.value("wsgate_connections_active", protocol="connect") == 0,
                "the tunnel to end")
            self.assertEqual(m.value("wsgate_connections_total", protocol="connect"), 1)
            self.assertEqual(m.value("wsgate_tunnel_bytes_total",
                                     direction="upstream_to_client"), 1000)

    async def test_h1_connect_drain_keeps_tunnel_until_drain_timeout(self):
        async with Echo() as echo:
            gw = h.Gateway(ch.connect_config(
                h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [echo.port]}]).replace(
                    'drain_timeout = "10s"', 'drain_timeout = "2s"'))
            await gw.start_async()
            try:
                sock, head = await ch.raw_connect(gw.port, f"127.0.0.1:{echo.port}")
                self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
                start = time.monotonic()
                gw.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                # Still relaying during the drain.
                self.assertEqual(await echo_round(sock, b"during drain"), b"during drain")
                rc = await gw.wait_exit(10)
                elapsed = time.monotonic() - start
                self.assertEqual(rc, 0)
                self.assertGreaterEqual(elapsed, 1.8)
                loop = asyncio.get_running_loop()
                self.assertEqual(await asyncio.wait_for(loop.sock_recv(sock, 10), 5), b"")
                sock.close()
            finally:
                await gw.stop_async()


if __name__ == "__main__":
    h.main()
