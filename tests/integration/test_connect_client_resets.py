"""A client that resets its tunnel resets the target's TCP connection too, instead of
the target seeing an orderly EOF as if the client had finished:

  - HTTP/2 (RFC 9113 8.5): RST_STREAM on a CONNECT stream -> the target gets a TCP RST;
  - HTTP/1.1 on a plain listener: the client's TCP RST -> the target gets a TCP RST.

Both end with tunnel_end=client_reset closed_by=client in the access log.
"""

import asyncio
import os
import socket
import struct
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_helpers as ch  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402


class ConnectClientResets(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self._certdir = tempfile.TemporaryDirectory(prefix="wsgate-rst-")
        self.addCleanup(self._certdir.cleanup)
        self.cert = c.make_certificate(self._certdir.name)
        self.target = socket.socket()
        self.addCleanup(self.target.close)
        self.target.bind(("127.0.0.1", 0))
        self.target.listen(1)
        self.target.setblocking(False)
        self.port = self.target.getsockname()[1]
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"u": ["127.0.0.1:9"]},
                        [{"path": "/", "upstream": "u"}], tls=self.cert)
        text = text.replace(f'address = "127.0.0.1:{port}"\n',
                            f'address = "127.0.0.1:{port}"\nconnect = true\n', 1)
        text += "[connect]\n" + h.toml_table("connect.allow",
                                             {"cidr": "127.0.0.1/32", "ports": [self.port]})
        self.gw = await self.start_gateway(text)

    async def expect_target_reset(self, peer):
        """The target reads `hello`, then its connection is reset (not an EOF)."""
        loop = asyncio.get_running_loop()
        got = b""
        while len(got) < 5:
            chunk = await asyncio.wait_for(loop.sock_recv(peer, 64), 10)
            self.assertTrue(chunk, f"EOF after {got!r}")
            got += chunk
        self.assertEqual(got, b"hello")
        with self.assertRaises(ConnectionResetError):
            chunk = await asyncio.wait_for(loop.sock_recv(peer, 64), 10)
            self.fail(f"the target read {chunk!r} instead of a reset")
        line = await self.gw.wait_access_line(
            lambda f: f.get("target") == f"127.0.0.1:{self.port}", "the tunnel")
        self.assertEqual((line["closed_by"], line["tunnel_end"]), ("client", "client_reset"))

    async def test_h2_connect_rst_stream_resets_the_target(self):
        loop = asyncio.get_running_loop()
        conn = await c.H2Conn.open("127.0.0.1", self.gw.port, tls=True)
        self.addAsyncCleanup(conn.close)
        st = await conn.request([(":method", "CONNECT"), (":authority", f"127.0.0.1:{self.port}")])
        await conn.response(st)
        self.assertEqual(st.status, 200)
        peer, _ = await asyncio.wait_for(loop.sock_accept(self.target), 5)
        self.addCleanup(peer.close)
        await conn.send_data(st, b"hello")
        await conn.reset(st)  # RST_STREAM(CANCEL)
        await self.expect_target_reset(peer)

    async def test_h1_connect_client_tcp_reset_resets_the_target(self):
        loop = asyncio.get_running_loop()
        self.gw = await self.start_gateway(ch.connect_config(
            h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [self.port]}]))  # plain
        sock, head = await ch.raw_connect(self.gw.port, f"127.0.0.1:{self.port}")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        peer, _ = await asyncio.wait_for(loop.sock_accept(self.target), 5)
        self.addCleanup(peer.close)
        await loop.sock_sendall(sock, b"hello")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
        await self.expect_target_reset(peer)


if __name__ == "__main__":
    h.main()
