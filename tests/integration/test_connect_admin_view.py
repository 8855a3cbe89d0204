"""CONNECT tunnels as the operator sees them: a live tunnel is a /connections row
(protocol "connect", its target, exact byte counts each way, no frames or messages) and
counts in wsgate_connections_active/total with protocol="connect"; once closed it
leaves the table, the gauge drops, and the access log line has the same byte counts,
the target and the proxy user.
"""

import asyncio
import base64
import os
import socket
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402

UP = 70_000    # client -> target bytes
DOWN = 50_000  # target -> client bytes
PASSWORD = "tunnel-pw"


class ConnectAdminView(h.GatewayCase):
    async def test_connect_tunnel_row_metrics_and_access_log(self):
        loop = asyncio.get_running_loop()
        target = socket.socket()
        self.addCleanup(target.close)
        target.bind(("127.0.0.1", 0))
        target.listen(1)
        target.setblocking(False)
        port = target.getsockname()[1]
        admin_port = h.free_port()
        text = ch.connect_config(h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [port]}],
                                 users=[("carol", ch.hash_password(PASSWORD))],
                                 listener={"name": "proxy"})
        gw = await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()

        creds = base64.b64encode(f"carol:{PASSWORD}".encode()).decode()
        sock, head = await ch.raw_connect(gw.port, f"127.0.0.1:{port}",
                                          f"Proxy-Authorization: Basic {creds}\r\n")
        self.addCleanup(sock.close)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        peer, _ = await asyncio.wait_for(loop.sock_accept(target), 5)
        self.addCleanup(peer.close)
        peer.setblocking(False)

        async def recv_exactly(s, n):
            got = 0
            while got < n:
                chunk = await asyncio.wait_for(loop.sock_recv(s, 65536), 10)
                self.assertTrue(chunk, f"closed after {got} of {n} bytes")
                got += len(chunk)
            self.assertEqual(got, n)

        await loop.sock_sendall(sock, b"u" * UP)
        await recv_exactly(peer, UP)
        await loop.sock_sendall(peer, b"d" * DOWN)
        await recv_exactly(sock, DOWN)

        client = f"127.0.0.1:{sock.getsockname()[1]}"
        table = await admin.connections()
        rows = [r for r in table["connections"] if r["client"] == client]
        self.assertEqual(len(rows), 1, table)
        r = rows[0]
        self.assertEqual(r["protocol"], "connect")
        self.assertEqual(r["target"], f"127.0.0.1:{port}")
        self.assertEqual(r["state"], "relaying")
        self.assertEqual(r["listener"], "proxy")
        self.assertEqual(r["server"], f"127.0.0.1:{port}")
        self.assertEqual(r["client_to_upstream"]["bytes"], UP, r)
        self.assertEqual(r["upstream_to_client"]["bytes"], DOWN, r)
        self.assertEqual(r["client_to_upstream"]["frames"], 0, r)
        self.assertEqual(r["upstream_to_client"]["messages"], 0, r)

        m = await admin.metrics()
        self.assertEqual(m.value("wsgate_connections_active", listener="proxy",
                                 protocol="connect"), 1, m.text)
        self.assertEqual(m.value("wsgate_connections_total", listener="proxy",
                                 protocol="connect"), 1, m.text)

        # The target ends first: the client reads EOF, then closes too.
        peer.shutdown(socket.SHUT_WR)
        self.assertEqual(await asyncio.wait_for(loop.sock_recv(sock, 64), 10), b"")
        sock.close()
        line = await gw.wait_access_line(lambda f: f.get("target") == f"127.0.0.1:{port}",
                                         "the tunnel's line")
        self.assertEqual(line["status"], "200")
        self.assertEqual(line["user"], "carol")
        self.assertEqual(line["c2u_bytes"], str(UP))
        self.assertEqual(line["u2c_bytes"], str(DOWN))
        self.assertEqual(line["closed_by"], "upstream")
        self.assertNotIn(creds, gw.stdout_text() + gw.stderr_text())
        await admin.wait_metrics(
            lambda mm: mm.value("wsgate_connections_active", listener="proxy",
                                protocol="connect") == 0, "the tunnel gauge back to 0")
        table = await admin.connections()
        self.assertFalse([x for x in table["connections"] if x["client"] == client], table)


if __name__ == "__main__":
    h.main()
