"""HTTP/2 client (h2c, RFC 8441) -> HTTP/1.1 backend: the admin close endpoints reach
WebSocket streams too. Two streams on one HTTP/2 connection; POST
/connections/<id>/close?code=4001&reason=... closes one (the id /connections shows for
that stream): the client gets Close 4001 with the reason, the backend the same, and the
other stream on the same connection keeps echoing. Then POST
/upstreams/echo/servers/<address>/close closes the other one (count 1, Close 1001).
"""

import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402


class H2AdminClose(h.GatewayCase):
    async def test_h2_h1_admin_closes_one_stream_then_a_servers_streams(self):
        backend = await self.start_backend(compression=None)
        port, admin_port = h.free_port(), h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                        [{"path": "/echo", "upstream": "echo"}], h2c=True)
        await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()

        conn = await c.H2Conn.open("127.0.0.1", port, tls=False)
        self.addAsyncCleanup(conn.close)
        streams = [await c.H2WebSocket.open(conn, "/echo", scheme="http") for _ in range(2)]
        for i, ws in enumerate(streams):
            await ws.send(h.OP_TEXT, f"m{i}".encode())
            self.assertEqual(await ws.recv_message(), (h.OP_TEXT, f"m{i}".encode()))
        # The backend sees the streams in order; /connections lists them oldest first.
        table = await admin.connections()
        rows = [r for r in table["connections"] if r["state"] == "relaying"]
        self.assertEqual(len(rows), 2, table)
        first = min(rows, key=lambda r: int(r["id"].split("-")[1]))

        reason = "stream maintenance"
        status, _, body = await admin.post(
            f"/connections/{first['id']}/close?code=4001&reason={urllib.parse.quote(reason)}")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"id": first["id"], "closed": 1, "code": 4001})
        close = await streams[0].recv_frame()
        self.assertEqual((close.opcode, close.close_code), (h.OP_CLOSE, 4001))
        self.assertEqual(close.payload[2:].decode(), reason)
        await streams[0].send(h.OP_CLOSE, h.close_payload(4001))
        await h.wait_until(lambda: any(r.close_code == 4001 for r in backend.conns), 10,
                           "the backend to see Close 4001")
        # The other stream on the same HTTP/2 connection is untouched.
        await streams[1].send(h.OP_TEXT, b"still")
        self.assertEqual(await streams[1].recv_message(), (h.OP_TEXT, b"still"))

        status, _, body = await admin.post(f"/upstreams/echo/servers/{backend.address}/close")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["closed"], 1, body)
        close = await streams[1].recv_frame()
        self.assertEqual((close.opcode, close.close_code), (h.OP_CLOSE, 1001))
        await streams[1].send(h.OP_CLOSE, h.close_payload(1001))
        await h.wait_until(lambda: sorted(r.close_code or 0 for r in backend.conns) == [1001, 4001],
                           10, "the backend to see both Closes")


if __name__ == "__main__":
    h.main()
