"""HTTP/2 CONNECT tunnels (RFC 9113 8.5: :method CONNECT, :authority, no :protocol) over
TLS with ALPN h2, with python3-h2 as the client and a local TCP echo service as target.

The stream gets :status 200, its DATA frames carry the tunnel's bytes both ways (1 MiB
echoed and compared; flow control is the backpressure), END_STREAM is passed on as a
half-close and the service's close ends the stream; denied targets get 403; without
connect = true on the listener a tunnel stream gets 405, as over HTTP/1.1. Also: curl with this TLS
listener as an HTTPS proxy (HTTP/1.1 CONNECT over TLS).
"""

import asyncio
import hashlib
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_helpers as ch  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402


class EchoService:
    """TCP echo on 127.0.0.1 that closes after the client's EOF."""

    async def _on_conn(self, reader, writer):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


class ConnectH2Tunnel(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self._certdir = tempfile.TemporaryDirectory(prefix="wsgate-h2c-")
        self.addCleanup(self._certdir.cleanup)
        self.cert = c.make_certificate(self._certdir.name)
        self.echo = EchoService()
        await self.echo.__aenter__()
        self.addAsyncCleanup(self.echo.__aexit__, None, None, None)

    async def gateway(self, connect: bool = True):
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"u": ["127.0.0.1:9"]},
                        [{"path": "/", "upstream": "u"}], tls=self.cert)
        text = text.replace(f'address = "127.0.0.1:{port}"\n',
                            f'address = "127.0.0.1:{port}"\nconnect = {"true" if connect else "false"}\n', 1)
        text += "[connect]\n" + h.toml_table(
            "connect.allow", {"cidr": "127.0.0.1/32", "ports": [self.echo.port]})
        return await self.start_gateway(text)

    async def open(self, gw, authority):
        conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=True)
        self.addAsyncCleanup(conn.close)
        self.assertEqual(conn.alpn, "h2")
        st = await conn.request([(":method", "CONNECT"), (":authority", authority)])
        await conn.response(st)
        return conn, st

    async def test_h2_connect_echo_1mib_then_end_stream(self):
        gw = await self.gateway()
        conn, st = await self.open(gw, f"127.0.0.1:{self.echo.port}")
        self.assertEqual(st.status, 200, st.body)
        payload = os.urandom(1024 * 1024)
        sender = asyncio.ensure_future(conn.send_data(st, payload, end_stream=True, timeout=20))
        await conn.wait_for(lambda: len(st.data) >= len(payload) or st.reset is not None
                            or conn.closed, 20, "1 MiB echoed")
        await sender
        self.assertEqual(hashlib.sha256(bytes(st.data)).hexdigest(),
                         hashlib.sha256(payload).hexdigest())
        # Our END_STREAM reached the service as EOF; its close ends the stream.
        await conn.wait_for(lambda: st.ended or st.reset is not None, 10, "END_STREAM")
        self.assertTrue(st.ended)
        self.assertIsNone(st.reset)
        line = await gw.wait_access_line(lambda f: f.get("target") == f"127.0.0.1:{self.echo.port}",
                                         "the h2 tunnel")
        self.assertEqual(line["proto"], "h2")
        self.assertEqual(line["status"], "200")
        self.assertEqual(int(line["c2u_bytes"]), len(payload))
        self.assertEqual(int(line["u2c_bytes"]), len(payload))

    async def test_h2_connect_two_tunnels_on_one_connection(self):
        gw = await self.gateway()
        conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=True)
        self.addAsyncCleanup(conn.close)
        streams = []
        for _ in range(2):
            st = await conn.request([(":method", "CONNECT"),
                                     (":authority", f"127.0.0.1:{self.echo.port}")])
            streams.append(st)
        for i, st in enumerate(streams):
            await conn.response(st)
            self.assertEqual(st.status, 200)
            await conn.send_data(st, f"stream {i}".encode())
        for i, st in enumerate(streams):
            await conn.wait_for(lambda s=st, i=i: bytes(s.data) == f"stream {i}".encode(), 10,
                                f"echo on stream {i}")

    async def test_h2_connect_denied_target_gets_403(self):
        gw = await self.gateway()
        conn, st = await self.open(gw, f"127.0.0.1:{self.echo.port + 1}")
        self.assertEqual(st.status, 403)
        await conn.wait_for(lambda: st.ended, 10, "the 403 body")
        self.assertIn(b"no [[connect.allow]] rule allows port", bytes(st.body))

    async def test_h2_connect_malformed_gets_400(self):
        gw = await self.gateway()
        conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=True)
        self.addAsyncCleanup(conn.close)
        st = await conn.request([(":method", "CONNECT"), (":authority", "127.0.0.1:1"),
                                 (":path", "/")])
        await conn.response(st)
        self.assertEqual(st.status, 400)
        st = await conn.request([(":method", "CONNECT"), (":authority", "127.0.0.1")])
        await conn.response(st)
        self.assertEqual(st.status, 400)

    async def test_tls_h1_connect_via_curl_https_proxy(self):
        # HTTP/1.1 CONNECT on the TLS listener (curl speaks http/1.1 to an HTTPS proxy):
        # the client side is TLS, so the target's close ends the tunnel as a whole.
        web = ch.HttpServer({"index.html": b"over tls proxy\n"})
        await web.__aenter__()
        self.addAsyncCleanup(web.__aexit__, None, None, None)
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"u": ["127.0.0.1:9"]},
                        [{"path": "/", "upstream": "u"}], tls=self.cert)
        text = text.replace(f'address = "127.0.0.1:{port}"\n',
                            f'address = "127.0.0.1:{port}"\nconnect = true\n', 1)
        text += "[connect]\n" + h.toml_table("connect.allow",
                                            {"cidr": "127.0.0.1/32", "ports": [web.port]})
        gw = await self.start_gateway(text)
        rc, out, err = await ch.curl("--proxy-insecure", "-x", f"https://127.0.0.1:{gw.port}",
                                     "--proxytunnel", f"http://127.0.0.1:{web.port}/index.html")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"over tls proxy\n")
        line = await gw.wait_access_line(lambda f: f.get("status") == "200", "the tunnel")
        self.assertEqual(line["tls"], "TLSv1.3")

    async def test_h2_connect_without_listener_connect_gets_405(self):
        gw = await self.gateway(connect=False)
        conn, st = await self.open(gw, f"127.0.0.1:{self.echo.port}")
        # The same answer as over HTTP/1.1: one tunnel exchange decides for both.
        self.assertEqual(st.status, 405)


if __name__ == "__main__":
    h.main()
