"""HTTP/2 CONNECT tunnels (RFC 9113 8.5) over TLS, python3-h2 as the client:

  - flow control is the backpressure: a target that stops reading closes the client's
    send window for that stream only (another tunnel on the same connection still
    works), and once the target reads again every byte arrives, in order, followed by
    the EOF that the client's END_STREAM (sent while the target was full) became;
  - a target whose TCP connection is reset: the bytes it sent arrive, then the stream
    is reset with CONNECT_ERROR (RFC 9113 8.5), not ended as if the target had closed;
  - proxy authentication over HTTP/2: no proxy-authorization -> :status 407 with
    proxy-authenticate, the right credentials -> 200.
"""

import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_helpers as ch  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402

CHUNK = 16 * 1024
CAP = 64 * 1024 * 1024  # the window must close well before this much is sent
PASSWORD = "h2-secret"


class ConnectH2FlowAuth(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self._certdir = tempfile.TemporaryDirectory(prefix="wsgate-h2t-")
        self.addCleanup(self._certdir.cleanup)
        self.cert = c.make_certificate(self._certdir.name)

    async def gateway(self, ports, users=()):
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"u": ["127.0.0.1:9"]},
                        [{"path": "/", "upstream": "u"}], tls=self.cert)
        text = text.replace(f'address = "127.0.0.1:{port}"\n',
                            f'address = "127.0.0.1:{port}"\nconnect = true\n', 1)
        text += "[connect]\n" + h.toml_table("connect.allow",
                                             {"cidr": "127.0.0.1/32", "ports": ports})
        for name, pw_hash in users:
            text += h.toml_table("connect.user", {"name": name, "password_hash": pw_hash})
        return await self.start_gateway(text)

    async def connection(self, gw):
        conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=True)
        self.addAsyncCleanup(conn.close)
        self.assertEqual(conn.alpn, "h2")
        return conn

    async def tunnel(self, conn, authority, extra=()):
        st = await conn.request([(":method", "CONNECT"), (":authority", authority), *extra])
        await conn.response(st)
        return st

    async def test_h2_connect_target_not_reading_closes_stream_window_only(self):
        loop = asyncio.get_running_loop()
        stuck = socket.socket()
        self.addCleanup(stuck.close)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(1)
        stuck.setblocking(False)
        echo = socket.socket()
        self.addCleanup(echo.close)
        echo.bind(("127.0.0.1", 0))
        echo.listen(1)
        echo.setblocking(False)
        stuck_port = stuck.getsockname()[1]
        echo_port = echo.getsockname()[1]
        gw = await self.gateway([stuck_port, echo_port])
        conn = await self.connection(gw)
        st = await self.tunnel(conn, f"127.0.0.1:{stuck_port}")
        self.assertEqual(st.status, 200)
        peer, _ = await asyncio.wait_for(loop.sock_accept(stuck), 5)
        self.addCleanup(peer.close)

        # Send until the stream's window stays closed for a second.
        digest = hashlib.sha256()
        sent = 0
        closed_since = None
        deadline = time.monotonic() + 20
        while sent < CAP and time.monotonic() < deadline:
            window = min(conn.send_window(st), conn.conn.max_outbound_frame_size, CHUNK)
            if window > 0:
                data = os.urandom(window)
                conn.conn.send_data(st.id, data)
                await conn.flush()
                digest.update(data)
                sent += window
                closed_since = None
                continue
            closed_since = closed_since or time.monotonic()
            if time.monotonic() - closed_since > 1.0:
                break
            await asyncio.sleep(0.02)
        self.assertEqual(conn.send_window(st), 0, f"window still open after {sent} bytes")
        self.assertLess(sent, CAP)
        self.assertGreater(conn.conn.outbound_flow_control_window, 0,
                           "one stream must not use up the connection window")

        # Another tunnel on the same connection is not held up.
        other = await self.tunnel(conn, f"127.0.0.1:{echo_port}")
        self.assertEqual(other.status, 200)
        other_peer, _ = await asyncio.wait_for(loop.sock_accept(echo), 5)
        self.addCleanup(other_peer.close)
        await conn.send_data(other, b"not blocked")
        got = b""
        while len(got) < len(b"not blocked"):
            got += await asyncio.wait_for(loop.sock_recv(other_peer, 64), 5)
        self.assertEqual(got, b"not blocked")

        # The target reads again: everything arrives, and the window reopens.
        await conn.end(st)
        received = hashlib.sha256()
        total = 0
        while True:
            try:
                data = await asyncio.wait_for(loop.sock_recv(peer, 256 * 1024), 15)
            except asyncio.TimeoutError:
                self.fail(f"stalled after {total} of {sent} bytes; window {conn.send_window(st)}")
            if not data:
                break
            received.update(data)
            total += len(data)
        self.assertEqual(total, sent)
        self.assertEqual(received.hexdigest(), digest.hexdigest())

    async def test_h2_connect_target_reset_resets_stream_with_connect_error(self):
        loop = asyncio.get_running_loop()
        target = socket.socket()
        self.addCleanup(target.close)
        target.bind(("127.0.0.1", 0))
        target.listen(1)
        target.setblocking(False)
        port = target.getsockname()[1]
        gw = await self.gateway([port])
        conn = await self.connection(gw)
        st = await self.tunnel(conn, f"127.0.0.1:{port}")
        self.assertEqual(st.status, 200)
        peer, _ = await asyncio.wait_for(loop.sock_accept(target), 5)
        await loop.sock_sendall(peer, b"partial")
        await conn.wait_for(lambda: bytes(st.data) == b"partial", 10, "the target's bytes")
        # SO_LINGER 0: close() sends a TCP RST.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        await conn.wait_for(lambda: st.ended or st.reset is not None, 10, "the stream's end")
        self.assertEqual(st.reset, 0xA, "RST_STREAM(CONNECT_ERROR)")  # RFC 9113 7
        line = await gw.wait_access_line(lambda f: f.get("target") == f"127.0.0.1:{port}",
                                         "the tunnel")
        self.assertEqual(line["closed_by"], "upstream")
        self.assertEqual(line["tunnel_end"], "upstream_reset")

    async def test_h2_connect_proxy_authentication(self):
        target = socket.socket()
        self.addCleanup(target.close)
        target.bind(("127.0.0.1", 0))
        target.listen(4)
        port = target.getsockname()[1]
        gw = await self.gateway([port], users=[("hana", ch.hash_password(PASSWORD))])
        conn = await self.connection(gw)
        st = await self.tunnel(conn, f"127.0.0.1:{port}")
        self.assertEqual(st.status, 407, st.body)
        self.assertEqual(st.header("proxy-authenticate"), 'Basic realm="wsgate", charset="UTF-8"')
        creds = base64.b64encode(f"hana:{PASSWORD}".encode()).decode()
        st = await self.tunnel(conn, f"127.0.0.1:{port}",
                               [("proxy-authorization", f"Basic {creds}")])
        self.assertEqual(st.status, 200)
        # The target closes: the tunnel ends and is logged.
        target.setblocking(False)
        peer, _ = await asyncio.wait_for(asyncio.get_running_loop().sock_accept(target), 5)
        peer.close()
        await conn.wait_for(lambda: st.ended or st.reset is not None, 10, "the tunnel's end")
        line = await gw.wait_access_line(lambda f: f.get("status") == "200", "the 200")
        self.assertEqual(line["user"], "hana")
        self.assertEqual(line["proto"], "h2")
        self.assertNotIn(creds, gw.stdout_text() + gw.stderr_text())


if __name__ == "__main__":
    h.main()
