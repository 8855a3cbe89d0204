"""Forward auth ([route.auth] type = "forward", issue 17): a subrequest to an HTTP auth
service decides each WebSocket handshake (HTTP/1.1 upgrade, RFC 8441 stream) and each
forwarded HTTP request (HTTP/1.1 and HTTP/2), before any upstream work.

The auth service is a separate process on Python's http.server (forward_auth_service.py):
"Bearer good" -> 200 with X-User: alice; "Bearer slow" stalls; "Bearer redirect" -> 302;
anything else -> 401 with a JSON body and WWW-Authenticate. A second auth upstream points
at a port nothing listens on. The WebSocket upstream is python3-websockets (harness
Backend), the HTTP upstream Node's http module (http_backend.js); both record what reached
them, so "only allowed requests reach the upstream" is counted there.

Checked: allowed requests go through with X-User from the service, a client's own X-User
never arrives (nor reaches the service); the service's 401 (body, WWW-Authenticate) and
302 reach the client and nothing reaches the upstream; a stalled service gives 503 at the
timeout; an unreachable one 503, or lets through with failure_mode_allow; the service sees
pooled keep-alive connections; with cache_ttl repeated handshakes skip the service, and
wsgate_auth_cache_lookups_total / wsgate_auth_decisions_total say so; a reload that changes
the auth setup does not serve the old decisions; an auth service behind [upstream.tls] is
reached over verified, pooled TLS.
"""

import asyncio
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as a  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402
import reload_helpers as rh  # noqa: E402

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SERVICE = os.path.join(h.HERE, "forward_auth_service.py")
DENY_BODY = b'{"error":"invalid_token","detail":"the token is not valid"}'
CHALLENGE = 'Bearer realm="test", error="invalid_token"'
GOOD = ("Authorization", "Bearer good")


class AuthService(hh.ListeningProcess):
    """forward_auth_service.py as its own process, stopped by its PID."""

    what = "the auth service"

    def __init__(self, tls=None):
        super().__init__("wsgate-auth-service-")
        self.tls = tls  # (cert, key): the service speaks TLS

    def argv(self) -> list:
        return [PYTHON, SERVICE] + (["--tls", *self.tls] if self.tls else [])

    def _stats(self) -> dict:
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            url = f"https://{self.address}/_stats"
        else:
            ctx, url = None, f"http://{self.address}/_stats"
        with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
            return json.loads(r.read())

    async def stats(self) -> dict:
        return await asyncio.to_thread(self._stats)

    async def seen_for(self, uri_prefix: str) -> list:
        """The subrequests whose X-Forwarded-Uri starts with `uri_prefix`, as dicts of
        lowercase field name -> [values]."""
        out = []
        for r in (await self.stats())["seen"]:
            fields = {}
            for k, v in r["headers"]:
                fields.setdefault(k.lower(), []).append(v)
            if fields.get("x-forwarded-uri", [""])[0].startswith(uri_prefix):
                out.append(dict(fields, _path=[r["path"]]))
        return out


def auth_table(upstream: str, path: str = "/check", **extra) -> str:
    text = f'[route.auth]\ntype = "forward"\nupstream = "{upstream}"\npath = "{path}"\n'
    text += "".join(f"{k} = {h.toml_value(v)}\n" for k, v in extra.items())
    return text + "\n"


def config(port: int, admin_port: int, ws: str, app: str, auth: str, down: str,
           cached_path: str = "/check") -> str:
    text = (f'workers = 1\naccess_log = "-"\n\n[[listener]]\naddress = "127.0.0.1:{port}"\n'
            f"h2c = true\n\n")
    for name, server in (("wsapp", ws), ("httpapp", app), ("auth", auth), ("authdown", down)):
        text += h.toml_table("upstream", {"name": name, "servers": [server]}) + "\n"
    routes = [
        ("ws", "/ws", "wsapp", auth_table("auth", response_headers=["x-user"], timeout="1s")),
        ("cached", "/cached", "wsapp",
         auth_table("auth", cached_path, response_headers=["x-user"], cache_ttl="30s")),
        ("http", "/http", "httpapp", auth_table("auth", response_headers=["x-user"],
                                               timeout="1s")),
        ("down", "/down", "httpapp", auth_table("authdown", timeout="1s")),
        ("downok", "/downok", "httpapp",
         auth_table("authdown", timeout="1s", failure_mode_allow=True)),
    ]
    for name, path, upstream, auth_text in routes:
        text += h.toml_table("route", {"name": name, "path": path, "upstream": upstream})
        text += auth_text
    return a.with_admin(text, admin_port)


def node_fields(info: dict) -> dict:
    """Node's rawHeaders list as lowercase name -> [values]."""
    raw = info["headers"]
    out = {}
    for k, v in zip(raw[::2], raw[1::2]):
        out.setdefault(k.lower(), []).append(v)
    return out


class ForwardAuth(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.service = await AuthService().start()
        self.addAsyncCleanup(self.service.stop)
        self.ws = await self.start_backend()
        self.app = await hh.start_node_backend(self, "app")
        down = f"127.0.0.1:{h.free_port()}"  # nothing listens there
        self.port = h.free_port()
        admin_port = h.free_port()
        self.admin = a.Admin(admin_port)
        self.config = lambda **kw: config(self.port, admin_port, self.ws.address,
                                          self.app.address, self.service.address, down, **kw)
        self.gw = await self.start_gateway(self.config())
        await self.admin.wait_up()

    async def upgrade(self, path: str, *extra) -> h.HttpResponse:
        return await h.http_exchange("127.0.0.1", self.port,
                                     h.upgrade_request(path, extra=list(extra)), timeout=15)

    async def get(self, path: str, *extra) -> h.HttpResponse:
        lines = [f"GET {path} HTTP/1.1", "Host: app.test", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in extra]
        return await h.http_exchange("127.0.0.1", self.port,
                                     ("\r\n".join(lines) + "\r\n\r\n").encode(), timeout=15)

    async def app_requests(self) -> int:
        return len((await self.app.stats_async())["requests"])

    async def test_h1_websocket_allowed_with_the_services_field_never_the_clients(self):
        async with h.ws_connect(self.port, "/ws/room?q=1",
                                extra_headers=[GOOD, ("X-User", "mallory"),
                                               ("x-user", "eve")]) as ws:
            await ws.send("hello")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hello")
        path, fields = self.ws.requests[-1]
        self.assertEqual(path, "/ws/room?q=1")
        got = [v for k, v in fields if k.lower() == "x-user"]
        self.assertEqual(got, ["alice"])  # the service's, and only it
        self.assertNotIn("x-internal", [k.lower() for k, _ in fields])
        # What the service was asked.
        seen = await self.service.seen_for("/ws")
        self.assertEqual(len(seen), 1, seen)
        s = seen[0]
        self.assertEqual(s["_path"], ["/check"])
        self.assertEqual(s["x-forwarded-method"], ["GET"])
        self.assertEqual(s["x-forwarded-uri"], ["/ws/room?q=1"])
        self.assertEqual(s["x-forwarded-host"], [f"127.0.0.1:{self.port}"])
        self.assertEqual(s["x-forwarded-proto"], ["http"])
        self.assertEqual(s["x-forwarded-for"], ["127.0.0.1"])
        self.assertEqual(s["authorization"], ["Bearer good"])
        self.assertEqual(s["host"], [self.service.address])
        self.assertNotIn("x-user", s)  # the spoofed copies were gone before the subrequest
        self.assertNotIn("sec-websocket-key", s)

    async def test_h1_websocket_denied_gets_the_services_401_and_the_upstream_nothing(self):
        for extra in ([("Authorization", "Bearer bad")], []):
            r = await self.upgrade("/ws", *extra)
            self.assertEqual(r.status, 401, r.raw)
            self.assertEqual(r.header("WWW-Authenticate"), CHALLENGE)
            self.assertEqual(r.header("Content-Type"), "application/json")
            self.assertEqual(r.body, DENY_BODY)
            self.assertIsNone(r.header("X-Internal"))
        r = await self.upgrade("/ws", ("Authorization", "Bearer redirect"))
        self.assertEqual(r.status, 302, r.raw)
        self.assertEqual(r.header("Location"), "https://login.example/?next=1")
        self.assertEqual(self.ws.requests, [])
        self.assertEqual(len(await self.service.seen_for("/ws")), 3)
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_auth_decisions_total", route="ws", result="denied"), 3)
        line = await self.gw.wait_access_line(lambda f: f.get("status") == "302", "the 302")
        self.assertEqual(line.get("reason"), "auth service denied the request", line)
        self.assertNotIn("Bearer", self.gw.stdout_text() + self.gw.stderr_text())

    async def test_a_stalled_service_gives_503_at_the_timeout(self):
        started = time.monotonic()
        r = await self.upgrade("/ws", ("Authorization", "Bearer slow"))
        took = time.monotonic() - started
        self.assertEqual(r.status, 503, r.raw)
        self.assertIn(b"auth service timed out after 1000ms", r.body)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5.0)
        r = await self.get("/http/info", ("Authorization", "Bearer slow"))
        self.assertEqual(r.status, 503, r.raw)
        self.assertEqual(self.ws.requests, [])
        self.assertEqual(await self.app_requests(), 0)
        # The next request is served while the service's stalled threads still sleep.
        r = await self.get("/http/info", GOOD)
        self.assertEqual(r.status, 200, r.raw)
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_auth_decisions_total", route="ws", result="failed"), 1)

    async def test_an_unreachable_service_gives_503_or_lets_through_when_allowed(self):
        for _ in range(2):
            r = await self.get("/down/info", GOOD)
            self.assertEqual(r.status, 503, r.raw)
            self.assertIn(b"auth service", r.body)
            self.assertNotIn(b"good", r.body)  # never the credentials
        self.assertEqual(await self.app_requests(), 0)
        r = await self.get("/downok/info", GOOD)
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(await self.app_requests(), 1)
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_auth_decisions_total", route="down", result="failed"), 2)
        line = await hh.access_line(self.gw, "/down/info")
        self.assertEqual(line.get("status"), "503", line)
        self.assertIn("auth service: cannot connect to upstream", line.get("reason", ""), line)
        # Neither log holds the credentials.
        self.assertNotIn("Bearer", self.gw.stdout_text() + self.gw.stderr_text())
        self.assertEqual(
            m.value("wsgate_auth_decisions_total", route="downok", result="failed_allowed"), 1)

    async def test_h1_http_requests_use_pooled_connections_to_the_service(self):
        n = 50
        for i in range(n):
            extra = [GOOD] + ([("X-User", "mallory")] if i % 10 == 0 else [])
            r = await self.get(f"/http/info?i={i}", *extra)
            self.assertEqual(r.status, 200, r.raw)
            info = json.loads(r.body)
            self.assertEqual(node_fields(info).get("x-user"), ["alice"], info)
        for _ in range(5):
            r = await self.get("/http/info", ("Authorization", "Bearer nope"))
            self.assertEqual(r.status, 401, r.raw)
            self.assertEqual(r.body, DENY_BODY)
        # RFC 9110 9.3.2: the denial of a HEAD request comes without its body.
        r = await h.http_exchange(
            "127.0.0.1", self.port,
            b"HEAD /http/info HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer nope\r\n\r\n")
        self.assertEqual(r.status, 401, r.raw)
        self.assertEqual(r.header("WWW-Authenticate"), CHALLENGE)
        self.assertEqual(r.body, b"")  # nothing after the head, up to the close
        self.assertEqual(await self.app_requests(), n)  # only the allowed ones
        stats = await self.service.stats()
        seen = await self.service.seen_for("/http")
        self.assertEqual(len(seen), n + 6)
        ports = sorted({p for p in stats["ports"]})
        print(f"\nauth service: {len(seen)} subrequests over {len(ports)} connection(s)",
              file=sys.stderr)
        self.assertLessEqual(len(ports), 3, ports)
        m = await self.admin.metrics()
        self.assertEqual(m.value("wsgate_auth_subrequest_duration_seconds_count", route="http"),
                         n + 6)
        self.assertEqual(m.value("wsgate_auth_decisions_total", route="http", result="allowed"), n)

    async def test_h2_streams_get_the_same_check(self):
        async with await c.H2Conn.open("127.0.0.1", self.port, tls=False) as conn:
            good = await conn.request(c.connect_headers(
                "/ws/h2", f"127.0.0.1:{self.port}", scheme="http",
                extra=[("authorization", "Bearer good"), ("x-user", "mallory")]))
            await conn.response(good)
            self.assertEqual(good.status, 200, good.headers)
            bad = await conn.request(c.connect_headers(
                "/ws/h2", f"127.0.0.1:{self.port}", scheme="http",
                extra=[("authorization", "Bearer bad")]))
            await conn.response(bad)
            await conn.wait_for(lambda: bad.ended or bad.reset is not None, 10, "the 401's end")
            self.assertEqual(bad.status, 401, bad.headers)
            self.assertEqual(bad.header("www-authenticate"), CHALLENGE)
            self.assertEqual(bytes(bad.body), DENY_BODY)
        self.assertEqual(len(self.ws.requests), 1)
        _, fields = self.ws.requests[0]
        self.assertEqual([v for k, v in fields if k.lower() == "x-user"], ["alice"])
        # An ordinary HTTP/2 request (h2c prior knowledge), allowed and denied.
        p = await hh.curl("--http2-prior-knowledge", "-H", "Authorization: Bearer good",
                          "-H", "X-User: mallory", f"http://127.0.0.1:{self.port}/http/info")
        self.assertEqual(p.returncode, 0, p.stderr)
        info = json.loads(p.stdout)
        self.assertEqual(node_fields(info).get("x-user"), ["alice"], info)
        p = await hh.curl("--http2-prior-knowledge", "-i", "-H", "Authorization: Bearer no",
                          f"http://127.0.0.1:{self.port}/http/info")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"HTTP/2 401"), p.stdout[:200])
        self.assertTrue(p.stdout.endswith(DENY_BODY), p.stdout[-200:])
        self.assertEqual(await self.app_requests(), 1)
        seen = await self.service.seen_for("/ws/h2")
        self.assertEqual(len(seen), 2)
        self.assertEqual(seen[0]["x-forwarded-method"], ["GET"])  # RFC 8441: a WebSocket GET

    async def test_cached_decisions_skip_the_service(self):
        for _ in range(10):
            async with h.ws_connect(self.port, "/cached", extra_headers=[GOOD]) as ws:
                await ws.send("x")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")
        for _ in range(5):
            r = await self.upgrade("/cached", ("Authorization", "Bearer bad"))
            self.assertEqual(r.status, 401, r.raw)
            self.assertEqual(r.body, DENY_BODY)  # the cached denial keeps its body
        self.assertEqual(len(self.ws.requests), 10)
        for _, fields in self.ws.requests:
            self.assertEqual([v for k, v in fields if k.lower() == "x-user"], ["alice"])
        seen = await self.service.seen_for("/cached")
        print(f"\ncached route: 15 handshakes, {len(seen)} subrequests", file=sys.stderr)
        self.assertEqual(len(seen), 2)  # one per distinct Authorization
        m = await self.admin.metrics()
        lookups = "wsgate_auth_cache_lookups_total"
        self.assertEqual(m.value(lookups, route="cached", result="hit"), 13)
        self.assertEqual(m.value(lookups, route="cached", result="miss"), 2)
        self.assertEqual(m.value("wsgate_auth_decisions_total", route="cached", result="allowed"),
                         10)
        self.assertEqual(m.value("wsgate_auth_decisions_total", route="cached", result="denied"),
                         5)
        self.assertEqual(m.value("wsgate_auth_subrequest_duration_seconds_count", route="cached"),
                         2)
        self.assertEqual(m.value(lookups, route="ws"), 0)  # no cache_ttl there

    async def test_a_reload_that_changes_the_auth_setup_starts_an_empty_cache(self):
        async def handshakes(n):
            for _ in range(n):
                async with h.ws_connect(self.port, "/cached", extra_headers=[GOOD]) as ws:
                    await ws.send("x")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")

        def paths():
            return [s["_path"][0] for s in seen]
        await handshakes(3)
        seen = await self.service.seen_for("/cached")
        self.assertEqual(paths(), ["/check"])
        # The same auth setup after a reload: the decisions stay.
        rh.write_config(self.gw, self.config())
        await rh.sighup(self.gw, rh.RELOADED)
        await handshakes(3)
        seen = await self.service.seen_for("/cached")
        self.assertEqual(paths(), ["/check"])
        # Another auth path: the old decisions are not served for it.
        rh.write_config(self.gw, self.config(cached_path="/check2"))
        await rh.sighup(self.gw, rh.RELOADED)
        await handshakes(3)
        seen = await self.service.seen_for("/cached")
        self.assertEqual(paths(), ["/check", "/check2"])


class ForwardAuthTls(h.GatewayCase):
    """The auth service behind [upstream.tls]: TLS to it comes with the upstream."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-auth-tls-")
        self.addCleanup(self.tmp.cleanup)
        cert, key = c.make_certificate(self.tmp.name)
        self.service = await AuthService(tls=(cert, key)).start()
        self.addAsyncCleanup(self.service.stop)
        self.app = await hh.start_node_backend(self, "app")
        self.port = h.free_port()
        text = f'workers = 1\naccess_log = "-"\n\n[[listener]]\naddress = "127.0.0.1:{self.port}"\n\n'
        text += h.toml_table("upstream", {"name": "app", "servers": [self.app.address]}) + "\n"
        for name, tls in (("auth", {"ca": cert}), ("authstranger", {})):
            text += h.toml_table("upstream", {"name": name, "servers": [self.service.address]})
            text += "[upstream.tls]\n" + "".join(f"{k} = {h.toml_value(v)}\n"
                                                  for k, v in tls.items()) + "\n"
        for path, upstream in (("/tls", "auth"), ("/stranger", "authstranger")):
            text += h.toml_table("route", {"path": path, "upstream": "app"})
            text += auth_table(upstream, response_headers=["x-user"], timeout="5s")
        self.gw = await self.start_gateway(text)

    async def get(self, path: str) -> h.HttpResponse:
        return await h.http_exchange(
            "127.0.0.1", self.port,
            f"GET {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\n"
            f"Connection: close\r\n\r\n".encode(), timeout=15)

    async def test_subrequests_over_tls_pooled_and_verified(self):
        for _ in range(5):
            r = await self.get("/tls/info")
            self.assertEqual(r.status, 200, r.raw)
            self.assertEqual(node_fields(json.loads(r.body)).get("x-user"), ["alice"])
        stats = await self.service.stats()
        self.assertEqual(len(await self.service.seen_for("/tls")), 5)
        self.assertEqual(len(stats["ports"]), 1, stats["ports"])  # one pooled TLS connection
        # A certificate the upstream's trust store does not know: no subrequest, 503.
        r = await self.get("/stranger/info")
        self.assertEqual(r.status, 503, r.raw)
        self.assertIn(b"TLS handshake with upstream", r.body)
        self.assertEqual(len(await self.service.seen_for("/stranger")), 0)
        self.assertEqual(len((await self.app.stats_async())["requests"]), 5)


if __name__ == "__main__":
    h.main()
