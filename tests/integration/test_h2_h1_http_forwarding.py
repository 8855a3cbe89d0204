"""HTTP/2 client -> HTTP/1.1 upstream: ordinary requests are forwarded (issue 15).

The clients are curl (--http2-prior-knowledge on h2c, --http2 over TLS with ALPN) and
nghttp; the upstream is Node's http module (http_backend.js). Each HTTP/2 stream is the
client side of one HTTP exchange: its HEADERS become the request, its DATA the request
content (flow control as the backpressure), the upstream's response goes back as
HEADERS and DATA. Covers: GET with forwarded fields, 100 MiB uploads with and without
content-length and downloads with and without it (SHA-256 both ways), 100-continue,
many requests on one connection over pooled upstream connections (and no stream-rate
refusal for requests answered whole), a response the upstream cuts (RST_STREAM), 413,
and websocket_only routes keeping their 426. Run plain (h2c) and over TLS.
"""

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402

MIB = 1024 * 1024
NGHTTP = shutil.which("nghttp")


class H2cForwarding(h.GatewayCase):
    tls = False

    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-h2-http-it-")
        self.addCleanup(self.tmp.cleanup)
        cert = c.make_certificate(self.tmp.name) if self.tls else None
        self.backend = await hh.start_node_backend(self, "b1")
        self.port = h.free_port()
        text = c.config(
            f"127.0.0.1:{self.port}", {"app": [self.backend.address]},
            [{"name": "small", "path": "/small", "upstream": "app", "max_body_size": "1KiB"},
             {"name": "ws", "path": "/ws", "upstream": "app", "websocket_only": True},
             {"name": "via", "path": "/via", "upstream": "app", "via": True},
             {"name": "app", "path": "/", "upstream": "app"}],
            tls=cert, h2c=not self.tls, workers=1)
        self.gw = await self.start_gateway(text)
        scheme = "https" if self.tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.h2 = ["--http2", "-k"] if self.tls else ["--http2-prior-knowledge"]

    async def curl(self, *args: str, stdin_path: str = "") -> subprocess.CompletedProcess:
        if not stdin_path:
            return await hh.curl(*self.h2, *args)

        def run():
            with open(stdin_path, "rb") as f:
                return subprocess.run([hh.CURL, "-sS", *self.h2, *args], stdin=f,
                                      capture_output=True, timeout=120)
        return await asyncio.to_thread(run)

    async def test_via_names_http2_toward_the_upstream_and_1_1_back(self):
        # RFC 9110 7.6.3: each Via member carries the version the message arrived in.
        p = await self.curl("-i", f"{self.base}/via/info")
        self.assertEqual(p.returncode, 0, p.stderr)
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nvia: 1.1 wsgate", head.lower())
        info = json.loads(body)
        pairs = list(zip(info["headers"][::2], info["headers"][1::2]))
        self.assertEqual([v for k, v in pairs if k.lower() == "via"], ["2 wsgate"])

    async def test_expectation_other_than_100_continue_gets_417(self):
        # RFC 9110 10.1.1, over HTTP/2 as over HTTP/1.1: not forwarded.
        p = await self.curl("-s", "-o", "/dev/null", "-w", "%{http_code}",
                            f"{self.base}/info?expect", "-H", "Expect: 200-ok")
        self.assertEqual(p.stdout, b"417", p.stderr)
        self.assertNotIn("/info?expect", [u for _, u in self.backend.stats()["requests"]])

    async def test_get_carries_the_request_and_forwarded_fields(self):
        p = await self.curl("-i", f"{self.base}/info?q=1", "-H", "X-Forwarded-For: 10.1.2.3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"HTTP/2 200"), p.stdout[:200])
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        info = json.loads(body)
        fields = dict(zip(info["headers"][::2], info["headers"][1::2]))
        self.assertEqual((info["method"], info["url"]), ("GET", "/info?q=1"))
        self.assertEqual(fields["Host"], f"127.0.0.1:{self.port}")  # from :authority
        self.assertEqual(fields["X-Forwarded-For"], "10.1.2.3, 127.0.0.1")
        self.assertEqual(fields["X-Forwarded-Proto"], "https" if self.tls else "http")
        self.assertIn(b"set-cookie: app=1; Path=/", head)
        line = await hh.access_line(self.gw, "/info?q=1")
        self.assertEqual((line["method"], line["status"], line["route"], line["proto"]),
                         ("GET", "200", "app", "h2"))
        self.assertEqual(line["u2c_bytes"], str(len(body)))

    async def test_upload_100mib_with_and_without_content_length(self):
        path, digest = hh.random_file(self.tmp.name, "up.bin", 100 * MIB)
        # --data-binary sends content-length; -T - reads stdin and sends DATA until
        # END_STREAM without one (the gateway sends it upstream chunked).
        for mode, args, stdin in (("content-length", ["--data-binary", f"@{path}"], ""),
                                  ("streamed", ["-T", "-"], path)):
            with self.subTest(mode):
                p = await self.curl(*args, f"{self.base}/upload?{mode}", stdin_path=stdin)
                self.assertEqual(p.returncode, 0, p.stderr)
                info = json.loads(p.stdout)
                self.assertEqual((info["bytes"], info["sha256"]), (100 * MIB, digest))
                fields = dict(zip(info["headers"][::2], info["headers"][1::2]))
                if mode == "streamed":
                    self.assertEqual(fields.get("Transfer-Encoding"), "chunked")
                else:
                    self.assertEqual(fields.get("Content-Length"), str(100 * MIB))
                line = await hh.access_line(self.gw, f"/upload?{mode}")
                self.assertEqual(line["c2u_bytes"], str(100 * MIB))

    async def test_download_100mib_with_and_without_content_length(self):
        for cl in ("1", "0"):
            with self.subTest(cl=cl):
                out = os.path.join(self.tmp.name, f"down{cl}.bin")
                p = await self.curl("-D", "-", "-o", out,
                                    f"{self.base}/download?bytes={100 * MIB}&cl={cl}")
                self.assertEqual(p.returncode, 0, p.stderr)
                head = p.stdout.decode()
                self.assertTrue(head.startswith("HTTP/2 200"), head)
                self.assertEqual("content-length: %d" % (100 * MIB) in head, cl == "1", head)
                self.assertNotIn("transfer-encoding", head.lower())
                digest = re.search(r"x-body-sha256: ([0-9a-f]+)", head).group(1)
                with open(out, "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)

    async def test_expect_100_continue_gets_an_interim_answer(self):
        path, digest = hh.random_file(self.tmp.name, "expect.bin", 2 * MIB)
        p = await self.curl("-v", "-H", "Expect: 100-continue", "--expect100-timeout", "30",
                            "--data-binary", f"@{path}", f"{self.base}/upload?expect")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"< HTTP/2 100", p.stderr)
        info = json.loads(p.stdout)
        self.assertEqual((info["bytes"], info["sha256"]), (2 * MIB, digest))
        fields = dict(zip(info["headers"][::2], info["headers"][1::2]))
        self.assertNotIn("Expect", fields)  # answered by the gateway (RFC 9110 10.1.1)

    async def test_many_requests_on_one_connection_share_upstream_connections(self):
        if NGHTTP is None:
            self.fail("nghttp not installed (scripts/install-deps.sh test)")
        before = (await self.backend.stats_async())["connections"]
        # 300 requests on one HTTP/2 connection, up to 100 at once: three times the
        # stream burst, far above its refill rate; streams answered whole give theirs back.
        args = [NGHTTP, "-n", "-s", "-m", "300", f"{self.base}/info?many"]

        def run():
            return subprocess.run(args, capture_output=True, timeout=120)
        p = await asyncio.to_thread(run)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        # -s prints one line per stream: "... <status> <size> <path>".
        done = re.findall(rb"^.* 200 +\d+ /info\?many$", p.stdout, re.M)
        self.assertEqual(len(done), 300, p.stdout[-2000:])
        stats = await self.backend.stats_async()
        many = [u for m, u in stats["requests"] if u == "/info?many"]
        self.assertEqual(len(many), 300)
        # Pooled keep-alive upstream connections: far fewer than requests (one per
        # concurrent stream at most, and the pool keeps 32 idle ones between rounds).
        self.assertLessEqual(stats["connections"] - before, 150)
        lines = [h.parse_logfmt(ln) for ln in self.gw.access_log_lines()]
        self.assertEqual(sum(1 for f in lines if f.get("path") == "/info?many"
                             and f.get("status") == "200" and f.get("proto") == "h2"), 300)

    async def test_end_stream_rides_on_the_last_data_frame(self):
        # RFC 9113 6.1: END_STREAM on the DATA frame that carries the end of a response,
        # not on an empty DATA frame sent after it.
        if NGHTTP is None:
            self.fail("nghttp not installed (scripts/install-deps.sh test)")

        def run():
            return subprocess.run([NGHTTP, "-n", "-v", f"{self.base}/info?frames"],
                                  capture_output=True, timeout=60)
        p = await asyncio.to_thread(run)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        # "recv DATA frame <length=123, flags=0x01, stream_id=13>"
        frames = re.findall(rb"recv DATA frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>",
                            p.stdout)
        self.assertTrue(frames, p.stdout[-2000:])
        streams = {f[2] for f in frames}
        self.assertEqual(len(streams), 1, frames)
        lengths = [int(f[0]) for f in frames]
        self.assertNotIn(0, lengths, frames)  # no empty DATA frame
        self.assertEqual(int(frames[-1][1], 16) & 0x1, 1, frames)  # END_STREAM on the last
        self.assertTrue(all(int(f[1], 16) & 0x1 == 0 for f in frames[:-1]), frames)

    async def test_a_cut_response_resets_the_stream(self):
        p = await self.curl("-o", "/dev/null", f"{self.base}/cut?bytes=100000")
        self.assertNotEqual(p.returncode, 0)
        # curl: "HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)"
        self.assertIn(b"INTERNAL_ERROR", p.stderr)
        line = await hh.access_line(self.gw, "/cut?bytes=100000")
        self.assertEqual(line["status"], "200")
        self.assertIn("closed before the end of the response", line["reason"])

    async def test_limits_and_websocket_only_routes(self):
        # python3-h2 rather than curl: the 413 comes before the content, and then (RFC 9113
        # 8.1) RST_STREAM(NO_ERROR) asks the client to stop sending, which curl 7.88
        # reports as a stream error when it arrives before its own END_STREAM.
        conn = await c.H2Conn.open("127.0.0.1", self.port, tls=self.tls)
        self.addAsyncCleanup(conn.close)
        st = await conn.request([(":method", "POST"), (":scheme", "https" if self.tls else "http"),
                                 (":path", "/small"), (":authority", "127.0.0.1"),
                                 ("content-length", "2000")])
        await conn.wait_for(lambda: st.ended or st.reset is not None, 20, "the 413")
        self.assertEqual(st.status, 413)
        self.assertIn(b"max_body_size", bytes(st.body))
        p = await self.curl("-i", f"{self.base}/ws")
        self.assertTrue(p.stdout.startswith(b"HTTP/2 426"), p.stdout[:200])
        self.assertIn(b"WebSocket only", p.stdout)
        requests = (await self.backend.stats_async())["requests"]
        self.assertFalse([u for _, u in requests if u.startswith(("/small", "/ws"))], requests)
        # Over the limit without a content-length: refused once the content passes it
        # (the head may have gone upstream by then: the content streams).
        st = await conn.request([(":method", "POST"), (":scheme", "https" if self.tls else "http"),
                                 (":path", "/small"), (":authority", "127.0.0.1")])
        await conn.send_data(st, b"y" * 2000)
        await conn.wait_for(lambda: st.ended or st.reset is not None, 20, "the second 413")
        self.assertEqual(st.status, 413)


class TlsH2Forwarding(H2cForwarding):
    tls = True


if __name__ == "__main__":
    unittest.main()
