"""wss:// client -> TLS listener -> ws:// backend: echo through the gateway with
Debian's python3-websockets over the ssl module, curl on the TLS port, what the backend
and the access log learn about TLS, and a clean TLS close (close_notify).

Certificates are generated now by the openssl CLI into a temporary folder.
"""

import asyncio
import os
import ssl
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class TlsEcho(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.cert = pki.leaf("a", cls.ca, ["a.test"])

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"echo": [self.backend.address]},
                            [{"path": "/echo", "upstream": "echo"}],
                            listener_tls={"certificates": [{"cert": self.cert.cert,
                                                            "key": self.cert.key}]})
        self.gw = await self.start_gateway(text)
        self.ctx = h.client_ssl_context(self.ca.cert)

    async def test_tls_wss_echo_text_and_binary(self):
        binary = os.urandom(70000)
        async with h.wss_connect(self.gw.port, self.ctx, "a.test") as ws:
            tls = ws.transport.get_extra_info("ssl_object")
            self.assertIsNotNone(tls, "the client connection is not TLS")
            self.assertEqual(tls.version(), "TLSv1.3")
            for text in ("hello over TLS", "é" * 1000, ""):
                await ws.send(text)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)
            await ws.send(binary)
            got = await asyncio.wait_for(ws.recv(), 20)
            self.assertIsInstance(got, bytes)
            self.assertEqual(len(got), len(binary))
            self.assertEqual(got, binary)
        rec = self.backend.conns[0]
        self.assertEqual(rec.messages, ["hello over TLS", "é" * 1000, "", binary],
                         "the backend did not receive exactly what the client sent")

    async def test_tls12_wss_echo(self):
        ctx = h.client_ssl_context(self.ca.cert, max_version=ssl.TLSVersion.TLSv1_2)
        async with h.wss_connect(self.gw.port, ctx, "a.test", compression=None) as ws:
            self.assertEqual(ws.transport.get_extra_info("ssl_object").version(), "TLSv1.2")
            payload = bytes(range(256)) * 300
            await ws.send(payload)
            self.assertEqual(await asyncio.wait_for(ws.recv(), 20), payload)

    async def test_tls_many_messages_both_directions(self):
        async with h.wss_connect(self.gw.port, self.ctx, "a.test", compression=None) as ws:
            msgs = [os.urandom(n) for n in (1, 125, 126, 65535, 65536, 200000)]
            for m in msgs:
                await ws.send(m)
            for m in msgs:
                self.assertEqual(await asyncio.wait_for(ws.recv(), 20), m)

    async def test_tls_client_untrusting_gets_no_connection(self):
        # Positive control for the trust setup: without our CA the client refuses.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with self.assertRaises(ssl.SSLCertVerificationError):
            async with h.wss_connect(self.gw.port, ctx, "a.test"):
                pass
        # And with our CA, a wrong name is refused too.
        with self.assertRaises(ssl.SSLCertVerificationError):
            async with h.wss_connect(self.gw.port, self.ctx, "not-a.test"):
                pass

    async def test_tls_forwarded_proto_is_https(self):
        async with h.wss_connect(self.gw.port, self.ctx, "a.test",
                                 extra_headers={"X-Forwarded-Proto": "http"}) as ws:
            await ws.send("x")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")
        rec = self.backend.conns[0]
        self.assertEqual(rec.headers("X-Forwarded-Proto"), ["https"],
                         "a TLS listener must say https, and replace the client's claim")
        self.assertEqual(rec.header("X-Forwarded-Host"), f"a.test:{self.gw.port}")
        self.assertEqual(rec.headers("X-Client-Cert-Subject"), [],
                         "no client certificate, yet a subject was sent")

    async def test_tls_access_log_has_tls_version(self):
        async with h.wss_connect(self.gw.port, self.ctx, "a.test") as ws:
            port = ws.local_address[1]
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), 10)
        fields = await self.gw.wait_access_line(
            lambda f: f.get("client") == f"127.0.0.1:{port}", "the wss connection")
        self.assertEqual(fields.get("tls"), "TLSv1.3", fields)
        self.assertEqual(fields.get("status"), "101", fields)
        self.assertNotIn("client_cert", fields, "no client certificate was sent")
        ctx12 = h.client_ssl_context(self.ca.cert, max_version=ssl.TLSVersion.TLSv1_2)
        async with h.wss_connect(self.gw.port, ctx12, "a.test") as ws:
            port12 = ws.local_address[1]
        fields = await self.gw.wait_access_line(
            lambda f: f.get("client") == f"127.0.0.1:{port12}", "the TLS 1.2 connection")
        self.assertEqual(fields.get("tls"), "TLSv1.2", fields)

    async def test_tls_curl_plain_get_gets_426(self):
        proc = await h.run_tool_async(["curl", "-sS", "--max-time", "20", "--cacert", self.ca.cert,
                           "--resolve", f"a.test:{self.gw.port}:127.0.0.1",
                           "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}",
                           f"https://a.test:{self.gw.port}/echo"], check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.split(), ["426", "0"], proc.stdout + proc.stderr)
        # curl with the wrong name fails verification: the certificate really is checked.
        proc = await h.run_tool_async(["curl", "-sS", "--max-time", "20", "--cacert", self.ca.cert,
                           "--resolve", f"b.test:{self.gw.port}:127.0.0.1",
                           f"https://b.test:{self.gw.port}/echo"], check=False)
        self.assertEqual(proc.returncode, 60, f"expected curl's 'peer certificate' error: "
                                              f"{proc.stderr}")

    async def test_tls_close_notify_after_error_response(self):
        # RFC 8446 6.1: each side MUST send close_notify before closing its write side.
        # Without it the client cannot tell the end of the answer from a truncation.
        r = await h.s_client_async(self.gw.port, servername="a.test", ca=self.ca.cert,
                       send=b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        self.assertTrue("HTTP/1.1 426" in r.out, r.out[-3000:])
        self.assertFalse("unexpected eof while reading" in r.out,
                         "wsgate closed the TLS connection after its 426 without close_notify")

    async def test_tls_close_notify_after_websocket_close(self):
        key = h.make_key()
        req = (h.upgrade_request("/echo", "a.test", key=key)
               + h.encode_frame(h.OP_TEXT, b"ping")
               + h.encode_frame(h.OP_CLOSE, h.close_payload(1000)))
        r = await h.s_client_async(self.gw.port, servername="a.test", ca=self.ca.cert, send=req)
        self.assertTrue("HTTP/1.1 101" in r.out, r.out[-3000:])
        self.assertTrue(h.accept_for(key) in r.out, "101 without the right Sec-WebSocket-Accept")
        self.assertFalse("unexpected eof while reading" in r.out,
                         "wsgate closed the TLS connection after the WebSocket close "
                         "without close_notify")


if __name__ == "__main__":
    h.main()
