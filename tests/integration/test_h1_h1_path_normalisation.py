"""HTTP/1.1 and HTTP/2 clients -> HTTP/1.1 backends: routing on the normalised path.

Routes are security boundaries (their own backend, Origin policy, limits), so the
gateway routes on the RFC 3986 6.2.2 normal form of the path (percent-encoded unreserved
characters decoded, dot segments removed, empty segments merged) and sends that same
path upstream. An encoded "/" is refused (400): it could cross segments in a backend
that decodes it. An absolute-form target routes by its own authority, and the backend
gets the origin form with that authority as Host.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402


class PathNormalisation(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.echo = await self.start_backend()
        self.admin = await self.start_backend()
        self.app = await self.start_backend()
        self.port = h.free_port()
        config = c.config(
            f"127.0.0.1:{self.port}",
            {"echo": [self.echo.address], "admin": [self.admin.address],
             "app": [self.app.address]},
            [{"name": "echo", "path": "/echo", "upstream": "echo"},
             {"name": "admin", "path": "/admin", "upstream": "admin",
              "allowed_origins": ["https://admin.example"], "require_origin": True},
             {"name": "app", "host": "app.example", "path": "/chat", "upstream": "app"}],
            h2c=True)
        self.gw = await self.start_gateway(config)

    async def upgrade(self, target: str, host: str = None, backend=None) -> h.BackendConn:
        """A raw upgrade to `target` must reach `backend` (default: echo) and echo."""
        backend = backend or self.echo
        before = len(backend.conns)
        req = h.upgrade_request(target, host or f"127.0.0.1:{self.port}")
        ws = await h.RawWebSocket.connect("127.0.0.1", self.port, request=req)
        async with ws:
            await ws.send_frame(h.OP_TEXT, target.encode())
            frame = await ws.recv_frame(10)
            self.assertIsNotNone(frame, f"{target}: closed instead of echoing")
            self.assertEqual(frame.payload, target.encode())
        conns = await backend.wait_conns(before + 1)
        return conns[before]

    async def test_h1_h1_equivalent_spellings_reach_the_route_normalised(self):
        for target in ("/ech%6F", "/ech%6f", "/x/../echo", "/%65cho", "//echo",
                       "/echo/./", "/admin/../echo", "/%2e%2e/echo", "/echo/a/%2E%2E/b"):
            with self.subTest(target):
                conn = await self.upgrade(target)
                expected = {"/echo/./": "/echo/", "/echo/a/%2E%2E/b": "/echo/b"}.get(
                    target, "/echo")
                self.assertEqual(conn.path, expected, "the backend gets the normalised path")
        # The query goes upstream unchanged.
        conn = await self.upgrade("/x/../echo?room=%2e%2e&a=1")
        self.assertEqual(conn.path, "/echo?room=%2e%2e&a=1")
        self.assertEqual(self.admin.requests, [])

    async def test_h1_h1_encoded_slash_does_not_escape(self):
        for target in ("/echo/..%2f..%2fadmin", "/echo/..%2F..%2Fadmin", "/echo%2f..%2fadmin",
                       "/echo/%00", "/echo/%zz"):
            with self.subTest(target):
                resp = await h.http_exchange(
                    "127.0.0.1", self.port, h.upgrade_request(target, f"127.0.0.1:{self.port}"))
                h.assert_error_response(self, resp, 400, target)
        self.assertEqual(self.admin.requests, [])
        self.assertEqual(self.echo.requests, [])
        # Dot segments that climb to the admin route are routed there, with its policy.
        resp = await h.http_exchange(
            "127.0.0.1", self.port,
            h.upgrade_request("/echo/../admin", f"127.0.0.1:{self.port}"))
        h.assert_error_response(self, resp, 403, "admin via dot segments, no Origin")
        self.assertEqual(self.echo.requests, [])

    async def test_h1_h1_absolute_form_routes_by_its_authority(self):
        # RFC 9112 3.2.2: the target's authority replaces Host; the backend gets the
        # origin form and that authority as Host.
        conn = await self.upgrade("http://app.example/chat", host="other.example",
                                  backend=self.app)
        self.assertEqual(conn.path, "/chat")
        self.assertEqual(conn.header("Host"), "app.example")
        conn = await self.upgrade("HTTP://APP.Example:80/x/../chat?q=1", host="other.example",
                                  backend=self.app)
        self.assertEqual(conn.path, "/chat?q=1")
        self.assertEqual(conn.header("Host"), "APP.Example:80")
        # Routed by the target's authority, not by Host.
        resp = await h.http_exchange(
            "127.0.0.1", self.port,
            h.upgrade_request("http://other.example/chat", "app.example"))
        h.assert_error_response(self, resp, 404, "absolute form, other authority")
        resp = await h.http_exchange(
            "127.0.0.1", self.port, h.upgrade_request("http:///chat", "app.example"))
        h.assert_error_response(self, resp, 400, "absolute form, empty authority")
        self.assertEqual(len(self.app.conns), 2)

    async def test_h2_h1_path_normalised_too(self):
        conn = await c.H2Conn.open("127.0.0.1", self.port, tls=False)
        self.addAsyncCleanup(conn.close)
        ws = await c.H2WebSocket.open(conn, "/x/../ech%6F", scheme="http")
        await ws.send(h.OP_TEXT, b"over h2")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"over h2"))
        conns = await self.echo.wait_conns(1)
        self.assertEqual(conns[0].path, "/echo")
        st = await conn.request(c.connect_headers("/echo/..%2f..%2fadmin", scheme="http"))
        await conn.response(st)
        self.assertEqual(st.status, 400)
        self.assertEqual(self.admin.requests, [])


if __name__ == "__main__":
    h.main()
