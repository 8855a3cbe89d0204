"""HTTP/1.1 client -> HTTP/1.1 backend: the opening handshake's error answers.

Strict, bounded request parsing (RFC 9112) and RFC 6455 4.2.1 validation, sent with raw
sockets because a WebSocket library will not send these requests. Every error answer
must carry a short text reason and `Connection: close`, the connection must be closed
after it, and the backend must never see the request. Positive controls next to each
limit show the same gateway does upgrade a valid request.
"""

import asyncio
import os
import shutil
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class HandshakeErrors(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()
        self.port = h.free_port()
        config = h.make_config(
            f"127.0.0.1:{self.port}", {"echo": [self.backend.address]},
            [{"name": "app", "host": "app.example", "path": "/echo", "upstream": "echo",
              "allowed_origins": ["https://good.example"]},
             {"name": "strict", "host": "app.example", "path": "/strict", "upstream": "echo",
              "allowed_origins": ["https://good.example"], "require_origin": True},
             # websocket_only: a plain request gets the gateway's 426/405, as every
             # route did before HTTP forwarding (test_h1_h1_http_forwarding.py).
             {"name": "open", "host": "*", "path": "/open", "upstream": "echo",
              "websocket_only": True}],
            listener={"max_header_bytes": "16KiB", "max_headers": 100,
                      "handshake_timeout": "1s"})
        self.gw = await self.start_gateway(config)
        self.host_hdr = f"127.0.0.1:{self.port}"

    # -- helpers -------------------------------------------------------------------
    async def exchange(self, request: bytes, timeout: float = 10.0) -> h.HttpResponse:
        return await h.http_exchange("127.0.0.1", self.port, request, timeout=timeout)

    async def expect_error(self, name: str, request: bytes, status: int) -> h.HttpResponse:
        resp = await self.exchange(request)
        h.assert_error_response(self, resp, status, name)
        return resp

    async def expect_upgrade(self, name: str, path: str = "/open", host: str = None,
                             extra=()) -> None:
        """A valid variant of the request must get the backend's 101 and echo a frame."""
        key = h.make_key()
        req = h.upgrade_request(path, host or self.host_hdr, key=key, extra=extra)
        before = len(self.backend.conns)
        ws = await h.RawWebSocket.connect("127.0.0.1", self.port, request=req)
        async with ws:
            self.assertEqual(ws.response.header("Sec-WebSocket-Accept"), h.accept_for(key),
                             f"{name}: bad accept")
            await ws.send_frame(h.OP_TEXT, b"control " + name.encode())
            frame = await ws.recv_frame(10)
            self.assertIsNotNone(frame, f"{name}: closed instead of echoing")
            self.assertEqual((frame.opcode, frame.payload),
                             (h.OP_TEXT, b"control " + name.encode()), name)
        self.assertEqual(len(self.backend.conns), before + 1, f"{name}: backend did not run")

    def assert_backend_untouched(self, allowed: int = 0) -> None:
        self.assertEqual(len(self.backend.requests), allowed,
                         "rejected requests must not reach the backend: "
                         f"{[p for p, _ in self.backend.requests]}")

    # -- limits ------------------------------------------------------------------------
    async def test_header_count_over_limit_431(self):
        fillers = [(f"X-Filler-{i}", "v") for i in range(150)]
        await self.expect_error("150 extra headers",
                                h.upgrade_request("/open", self.host_hdr, extra=fillers), 431)
        self.assert_backend_untouched()
        # Control: exactly max_headers (5 standard + 95) is accepted.
        await self.expect_upgrade("100 headers",
                                  extra=[(f"X-Filler-{i}", "v") for i in range(95)])

    async def test_header_bytes_over_limit_431(self):
        await self.expect_error("17 KiB header",
                                h.upgrade_request("/open", self.host_hdr,
                                                  extra=[("X-Big", "a" * (17 * 1024))]), 431)
        await self.expect_error("many medium headers over 16 KiB",
                                h.upgrade_request("/open", self.host_hdr,
                                                  extra=[(f"X-M{i}", "b" * 1000)
                                                         for i in range(20)]), 431)
        self.assert_backend_untouched()
        # (websockets, the backend, takes header lines up to 4110 bytes)
        await self.expect_upgrade("15 KiB head", extra=[(f"X-Big{i}", "a" * 3800)
                                                        for i in range(4)])

    async def test_malformed_requests_400(self):
        base = h.upgrade_request("/open", self.host_hdr).decode()
        cases = {
            "header line without colon":
                base.replace("\r\n\r\n", "\r\nNoColonHere\r\n\r\n"),
            "whitespace between field name and colon (RFC 9112 5.1)":
                base.replace("Host: ", "Host : "),
            "garbage request line": "HELLO\r\nHost: x\r\n\r\n",
            "request line with extra spaces": base.replace("GET /open HTTP/1.1",
                                                           "GET  /open  HTTP/1.1"),
            "Content-Length and Transfer-Encoding":
                base.replace("\r\n\r\n", "\r\nContent-Length: 5\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"),
            "duplicate Content-Length (different)":
                base.replace("\r\n\r\n", "\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            "duplicate Content-Length (same)":
                base.replace("\r\n\r\n", "\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"),
        }
        for name, req in cases.items():
            with self.subTest(name):
                await self.expect_error(name, req.encode("latin-1"), 400)
        self.assert_backend_untouched()

    async def test_incomplete_head_408(self):
        # Half a head, then silence: 408 after handshake_timeout (1 s).
        conn = await h.RawConn.open("127.0.0.1", self.port)
        start = time.monotonic()
        async with conn:
            await conn.send(b"GET /open HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            data, closed = await conn.read_until_eof(15)
        elapsed = time.monotonic() - start
        resp = h.response_from(data, closed, elapsed)
        h.assert_error_response(self, resp, 408, "half a head")
        self.assertGreaterEqual(elapsed, 0.9, "408 before handshake_timeout")
        self.assertLess(elapsed, 8.0, "408 long after handshake_timeout (1s)")
        self.assert_backend_untouched()

    async def test_slow_head_408_even_while_bytes_trickle_in(self):
        # The whole head must arrive within handshake_timeout; a byte every 100 ms does
        # not reset the clock (slowloris).
        request = h.upgrade_request("/open", self.host_hdr,
                                    extra=[("X-Pad", "p" * 200)])
        conn = await h.RawConn.open("127.0.0.1", self.port)
        start = time.monotonic()
        data, closed = b"", False
        async with conn:
            for i in range(len(request) - 1):  # never completes the head
                if time.monotonic() - start > 10:
                    break
                try:
                    await conn.send(request[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                chunk = await conn.recv(0.1)
                if chunk:
                    data += chunk
                if chunk == b"" or closed:
                    closed = True
                    break
            if not closed:
                more, closed = await conn.read_until_eof(5)
                data += more
        elapsed = time.monotonic() - start
        head = h.parse_response_head(data)
        self.assertIsNotNone(head, f"no response to a trickled head after {elapsed:.1f}s")
        self.assertEqual(head[0], 408, data[:200])
        self.assertTrue(closed, "connection not closed after 408")
        self.assertLess(elapsed, 4.0, "trickling bytes extended the 1s handshake_timeout")
        self.assert_backend_untouched()

    # -- RFC 6455 4.2.1 ----------------------------------------------------------------
    async def test_rfc6455_validation(self):
        hh = self.host_hdr
        key15 = h.make_key(os.urandom(15))
        cases = [
            ("POST", h.upgrade_request("/open", hh, method="POST"), 405),
            ("missing Host", h.upgrade_request("/open", hh, omit=["Host"]), 400),
            ("two Host headers", h.upgrade_request("/open", hh, extra=[("Host", "other")]), 400),
            ("Upgrade without websocket", h.upgrade_request("/open", hh, upgrade="h2c"), 400),
            ("Connection without upgrade",
             h.upgrade_request("/open", hh, connection="keep-alive"), 400),
            ("missing Sec-WebSocket-Key", h.upgrade_request("/open", hh, omit=["Sec-WebSocket-Key"]),
             400),
            ("Sec-WebSocket-Key not base64 of 16 bytes",
             h.upgrade_request("/open", hh, key="short"), 400),
            ("Sec-WebSocket-Key of 15 bytes", h.upgrade_request("/open", hh, key=key15), 400),
            ("two Sec-WebSocket-Key headers",
             h.upgrade_request("/open", hh, extra=[("Sec-WebSocket-Key", h.make_key())]), 400),
        ]
        for name, req, status in cases:
            with self.subTest(name):
                await self.expect_error(name, req, status)
        for version in ("8", "12", "14"):
            with self.subTest(f"Sec-WebSocket-Version {version}"):
                resp = await self.expect_error(f"version {version}",
                                               h.upgrade_request("/open", hh, version=version),
                                               426)
                self.assertEqual(resp.header("Sec-WebSocket-Version"), "13", resp.raw[:300])
        self.assert_backend_untouched()
        # Control: token lists and case are handled as RFC 6455/9110 say.
        key = h.make_key()
        req = h.upgrade_request("/open", hh, key=key, upgrade="WebSocket",
                                connection="keep-alive, Upgrade")
        ws = await h.RawWebSocket.connect("127.0.0.1", self.port, request=req)
        ws.close()
        self.assertEqual(ws.response.header("Sec-WebSocket-Accept"), h.accept_for(key))

    async def test_plain_get_to_websocket_route_426(self):
        req = f"GET /open HTTP/1.1\r\nHost: {self.host_hdr}\r\n\r\n".encode()
        await self.expect_error("plain GET", req, 426)
        self.assert_backend_untouched()

    async def test_curl_sees_the_error_answers(self):
        # An independent HTTP client parses the error responses as intended.
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl is not installed")
        cases = [
            ("plain GET", [f"http://127.0.0.1:{self.port}/open"], 426),
            ("unknown path", [f"http://127.0.0.1:{self.port}/nope", "-H", "Upgrade: websocket",
                              "-H", "Connection: Upgrade"], 404),
            ("old version", [f"http://127.0.0.1:{self.port}/open", "-H", "Upgrade: websocket",
                             "-H", "Connection: Upgrade", "-H", f"Sec-WebSocket-Key: {h.make_key()}",
                             "-H", "Sec-WebSocket-Version: 8"], 426),
        ]
        for name, args, status in cases:
            with self.subTest(name):
                proc = await asyncio.create_subprocess_exec(
                    curl, "-sS", "--http1.1", "--max-time", "10", "-D", "-",
                    "-w", "\nhttp-status=%{http_code}\n", *args,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                try:
                    out, err = await asyncio.wait_for(proc.communicate(), 20)
                except asyncio.TimeoutError:
                    os.kill(proc.pid, 9)
                    await proc.wait()
                    self.fail(f"{name}: curl did not finish")
                self.assertEqual(proc.returncode, 0, err.decode())
                text = out.decode("utf-8", "replace")
                self.assertIn(f"http-status={status}", text)
                self.assertRegex(text.lower(), r"connection: close")
        self.assert_backend_untouched()

    # -- routing and origin ------------------------------------------------------------
    async def test_unknown_path_or_host_404(self):
        hh = self.host_hdr
        cases = [
            ("unknown path", h.upgrade_request("/nope", hh)),
            ("prefix not on a segment boundary", h.upgrade_request("/openx", hh)),
            ("host without a route for the path", h.upgrade_request("/echo", "other.example")),
            ("suffix host", h.upgrade_request("/echo", "notapp.example",
                                              extra=[("Origin", "https://good.example")])),
        ]
        for name, req in cases:
            with self.subTest(name):
                await self.expect_error(name, req, 404)
        self.assert_backend_untouched()
        await self.expect_upgrade("sub path", path="/open/room/1")
        await self.expect_upgrade("host route", path="/echo", host="app.example",
                                  extra=[("Origin", "https://good.example")])
        self.assertEqual(self.backend.conns[-1].path, "/echo")
        self.assertEqual(self.backend.conns[-2].path, "/open/room/1")

    async def test_origin_not_allowed_403(self):
        for origin in ("https://evil.example", "http://good.example",
                       "https://good.example.evil.example", "null"):
            with self.subTest(origin):
                await self.expect_error(
                    origin, h.upgrade_request("/echo", "app.example",
                                              extra=[("Origin", origin)]), 403)
        self.assert_backend_untouched()
        await self.expect_upgrade("allowed origin", path="/echo", host="app.example",
                                  extra=[("Origin", "https://good.example")])
        await self.expect_upgrade("allowed origin, other case", path="/echo",
                                  host="app.example", extra=[("Origin", "https://GOOD.example")])

    async def test_missing_origin_passes_unless_required(self):
        # Browsers always send Origin; a client without one is no browser, and the
        # allowed_origins list (which protects browser users) lets it through.
        await self.expect_upgrade("no Origin, allowed_origins set", path="/echo",
                                  host="app.example")
        # require_origin = true: strict mode refuses it before the backend sees it.
        before = len(self.backend.requests)
        resp = await self.expect_error(
            "no Origin, require_origin", h.upgrade_request("/strict", "app.example"), 403)
        self.assertIn(b"missing Origin header", resp.body)
        self.assertEqual(len(self.backend.requests), before)
        await self.expect_upgrade("strict route with its Origin", path="/strict",
                                  host="app.example", extra=[("Origin", "https://good.example")])


if __name__ == "__main__":
    h.main()
