"""send_proxy_protocol: wsgate names the client to its upstream with a PROXY protocol
header, checked by a real third-party reader of the header: HAProxy in HTTP mode with
`accept-proxy` between wsgate and the backend, which copies the header's source and
destination into request headers (X-PP-Src, X-PP-Dst) for the backend to see.

    client -> wsgate (send_proxy_protocol) -> HAProxy (accept-proxy) -> backend

HAProxy refuses a connection without a valid header, so every exchange that gets through
had one. Cases: v2 and v1, a WebSocket handshake and a forwarded HTTP request, a trusted
proxy's X-Forwarded-For client, the websocket health check's LOCAL header, and a wss://
upstream (the header goes before the TLS handshake).
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import haproxy_helpers as hp  # noqa: E402
import harness as h  # noqa: E402

HAPROXY_CFG = """\
global
    maxconn 200
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 60s
frontend from_gateway
    bind 127.0.0.1:{plain}{bind_extra}
    http-request set-header X-PP-Src %[src]:%[src_port]
    http-request set-header X-PP-Dst %[dst]:%[dst_port]
    default_backend app
backend app
    server app {backend}
"""


def gateway_config(gw_port, haproxy_port, version, **top):
    text = h.make_config(f"127.0.0.1:{gw_port}", {"app": [f"127.0.0.1:{haproxy_port}"]},
                         [{"name": "app", "path": "/", "upstream": "app"}])
    text = text.replace('servers = ', f'send_proxy_protocol = "{version}"\nservers = ', 1)
    for key, value in top.items():
        text = f"{key} = {h.toml_value(value)}\n" + text
    return text


class SendProxyProtocol(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        if not hp.available():
            self.skipTest(f"haproxy not found at {hp.HAPROXY} (scripts/install-deps.sh test)")
        self.backend = await self.start_backend()
        self.haproxy = await hp.HAProxy(HAPROXY_CFG, ["plain"], backend=self.backend.address,
                                        bind_extra=" accept-proxy").start()
        self.addCleanup(self.haproxy.stop)

    async def websocket_through(self, version, **top):
        gw = await self.start_gateway(
            gateway_config(h.free_port(), self.haproxy.ports["plain"], version, **top))
        async with h.ws_connect(gw.port, path="/chat") as ws:
            client_port = ws.local_address[1]
            await ws.send("hello")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hello")
        return gw, client_port, self.backend.conns[-1]

    async def test_v2_names_the_websocket_client(self):
        _, client_port, rec = await self.websocket_through("v2")
        self.assertEqual(rec.header("X-PP-Src"), f"127.0.0.1:{client_port}")
        self.assertEqual(rec.header("X-PP-Dst"), f"127.0.0.1:{self.haproxy.ports['plain']}")

    async def test_v1_names_the_websocket_client(self):
        _, client_port, rec = await self.websocket_through("v1")
        self.assertEqual(rec.header("X-PP-Src"), f"127.0.0.1:{client_port}")

    async def test_without_the_header_haproxy_refuses(self):
        # What makes the other cases mean something: HAProxy's accept-proxy closes a
        # connection without a header, so the handshake fails (502).
        text = gateway_config(h.free_port(), self.haproxy.ports["plain"], "v2")
        gw = await self.start_gateway(text.replace('send_proxy_protocol = "v2"\n', "", 1))
        conn = await h.RawConn.open("127.0.0.1", gw.port)
        async with conn:
            await conn.send(h.upgrade_request("/chat", "127.0.0.1"))
            data, closed = await conn.read_until_eof(10)
        self.assertEqual(h.response_from(data, closed, 0).status, 502, data)
        self.assertEqual(self.backend.conns, [])

    async def test_forwarded_http_request_carries_the_header(self):
        gw = await self.start_gateway(
            gateway_config(h.free_port(), self.haproxy.ports["plain"], "v2"))
        for i in range(3):  # each on its own upstream connection (keepalive is 0)
            conn = await h.RawConn.open("127.0.0.1", gw.port)
            async with conn:
                await conn.send(f"GET /plain?{i} HTTP/1.1\r\nHost: a\r\n"
                                "Connection: close\r\n\r\n".encode())
                data, closed = await conn.read_until_eof(10)
                # The websockets backend answers a plain GET with its own 426.
                self.assertEqual(h.response_from(data, closed, 0).status, 426, data)
                path, headers = self.backend.requests[-1]
                self.assertEqual(path, f"/plain?{i}")
                src = [v for k, v in headers if k.lower() == "x-pp-src"]
                self.assertEqual(src, [f"127.0.0.1:{conn.local_port}"])

    async def test_trusted_proxy_client_is_named(self):
        # The client is what the rest of the gateway takes it for: a trusted proxy's
        # X-Forwarded-For entry (no port is known for it: 0).
        gw = await self.start_gateway(gateway_config(
            h.free_port(), self.haproxy.ports["plain"], "v2", trusted_proxies=["127.0.0.1/32"]))
        async with h.ws_connect(gw.port, path="/chat",
                                extra_headers={"X-Forwarded-For": "203.0.113.7"}) as ws:
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), 10)
        # (HAProxy prints the port 0 as nothing.)
        src = self.backend.conns[-1].header("X-PP-Src")
        self.assertEqual(src.rsplit(":", 1)[0], "203.0.113.7", src)

    async def test_websocket_health_check_sends_local(self):
        # The check is wsgate's own connection: LOCAL, which HAProxy accepts (the
        # connection's own addresses stand), so the server stays up.
        admin_port = h.free_port()
        text = gateway_config(h.free_port(), self.haproxy.ports["plain"], "v2").replace(
            "[[route]]", '[upstream.health_check]\ntype = "websocket"\npath = "/health"\n'
            'interval = "200ms"\ntimeout = "150ms"\nrise = 1\nfall = 1\n\n[[route]]', 1)
        gw = await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        await h.wait_until(lambda: any(p == "/health" for p, _ in self.backend.requests), 10,
                           "a health check through HAProxy")
        checks = [hs for p, hs in self.backend.requests if p == "/health"]
        src = [v for k, v in checks[0] if k.lower() == "x-pp-src"]
        self.assertTrue(src and src[0].startswith("127.0.0.1:"), checks[0])
        m = await admin.metrics()
        self.assertEqual(m.value("wsgate_upstream_server_up", upstream="app"), 1, m.text)
        self.assertEqual(m.value("wsgate_upstream_server_health_transitions_total",
                                 upstream="app", to="down"), 0, m.text)



class SendProxyProtocolTls(h.PkiCase):
    """A wss:// upstream: the PROXY header goes on the TCP connection before the TLS
    handshake (HAProxy's `accept-proxy ssl` reads it first, then terminates TLS)."""

    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.leaf = pki.leaf("app", cls.ca, ["app.test"])
        cls.pem = pki.path("app-combined.pem")
        with open(cls.pem, "w", encoding="ascii") as out:
            for part in (cls.leaf.cert, cls.leaf.key):
                with open(part, encoding="ascii") as f:
                    out.write(f.read())

    async def asyncSetUp(self):
        await super().asyncSetUp()
        if not hp.available():
            self.skipTest(f"haproxy not found at {hp.HAPROXY} (scripts/install-deps.sh test)")
        self.backend = await self.start_backend()
        self.haproxy = await hp.HAProxy(HAPROXY_CFG, ["plain"], backend=self.backend.address,
                                        bind_extra=f" accept-proxy ssl crt {self.pem}").start()
        self.addCleanup(self.haproxy.stop)

    async def test_header_then_tls(self):
        admin_port = h.free_port()
        for version in ("v2", "v1"):
            text = h.tls_config(f"127.0.0.1:{h.free_port()}",
                                {"app": [f"127.0.0.1:{self.haproxy.ports['plain']}"]},
                                [{"path": "/", "upstream": "app"}],
                                upstream_tls={"app": {"ca": self.ca.cert,
                                                      "server_name": "app.test"}})
            text = text.replace("servers = ", f'send_proxy_protocol = "{version}"\nservers = ', 1)
            gw = await self.start_gateway(ac.with_admin(text, admin_port))
            admin = ac.Admin(admin_port)
            await admin.wait_up()
            async with h.ws_connect(gw.port, path="/chat") as ws:
                client_port = ws.local_address[1]
                await ws.send("over tls")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "over tls")
            self.assertEqual(self.backend.conns[-1].header("X-PP-Src"),
                             f"127.0.0.1:{client_port}", version)
            # The connect latency covers TCP and TLS, observed once per connection.
            m = await admin.metrics()
            self.assertEqual(
                m.value("wsgate_upstream_connect_duration_seconds_count", upstream="app"), 1)
            await gw.stop_async()


if __name__ == "__main__":
    h.main()
