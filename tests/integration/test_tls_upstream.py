"""ws:// or wss:// client -> wsgate -> wss:// backend ([upstream.tls]): the backend's
certificate is verified against `ca` and `server_name` (default: the server's host),
a failed verification answers 502 with a reason naming the TLS failure, `verify = false`
skips it, and `cert`/`key` present a client certificate to the backend.

The backends are python3-websockets servers with an ssl server context; certificates are
generated now by the openssl CLI.
"""

import asyncio
import logging
import os
import ssl
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# The backends' refused handshakes are expected here; asyncio would log each one.
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


class TlsBackend:
    """What a TLS backend saw: SNI names and client certificates, per connection."""

    def __init__(self, cert: h.CertFiles, client_ca: str = None):
        self.sni = []
        self.peer_subjects = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        if client_ca:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(client_ca)
        self.ctx.sni_callback = lambda sslobj, name, ctx: self.sni.append(name)

    def handler(self):
        async def handle(ws, rec):
            sslobj = ws.transport.get_extra_info("ssl_object")
            rec.tls_version = sslobj.version() if sslobj else None
            peer = ws.transport.get_extra_info("peercert")
            self.peer_subjects.append(dict(x[0] for x in peer["subject"]) if peer else None)
            await h.echo_handler(ws, rec)
        return handle


class UpstreamTls(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.other_ca = pki.ca("other-ca", cn="unrelated CA")
        cls.backend_cert = pki.leaf("backend", cls.ca, ["backend.test"])
        cls.backend_ip_cert = pki.leaf("backend-ip", cls.ca, ["127.0.0.1"], cn="127.0.0.1")
        cls.impostor = pki.leaf("impostor", cls.other_ca, ["backend.test"])
        cls.client_ca = pki.ca("client-ca", cn="backend client CA")
        cls.gw_client = pki.leaf("gw-client", cls.client_ca, [], cn="wsgate.gateway",
                                 usage="client")
        cls.edge = pki.leaf("edge", cls.ca, ["a.test"])

    async def start_tls_backend(self, cert, client_ca=None):
        tb = TlsBackend(cert, client_ca)
        backend = await self.start_backend(tb.handler(), ssl=tb.ctx)
        return tb, backend

    async def gateway(self, servers, upstream_tls, listener_tls=None):
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"secure": servers},
                            [{"path": "/echo", "upstream": "secure", "connect_timeout": "5s"}],
                            upstream_tls={"secure": upstream_tls}, listener_tls=listener_tls)
        return await self.start_gateway(text)

    async def echo_once(self, gw, text="through TLS"):
        async with h.ws_connect(gw.port) as ws:
            await ws.send(text)
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)

    async def expect_502(self, gw, *mentions):
        resp = await h.http_exchange("127.0.0.1", gw.port, h.upgrade_request("/echo"))
        h.assert_error_response(self, resp, 502, "TLS upstream")
        body = resp.body.decode()
        self.assertIn("TLS", body, f"502 reason should name the TLS failure: {body!r}")
        for word in mentions:
            self.assertIn(word, body)
        return body

    async def test_tls_upstream_verified_with_ca_and_server_name(self):
        tb, backend = await self.start_tls_backend(self.backend_cert)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert,
                                                    "server_name": "backend.test"})
        await self.echo_once(gw)
        binary = os.urandom(70000)
        async with h.ws_connect(gw.port) as ws:
            await ws.send(binary)
            self.assertEqual(await asyncio.wait_for(ws.recv(), 20), binary)
        self.assertEqual(backend.conns[0].tls_version, "TLSv1.3")
        self.assertIn("backend.test", tb.sni, "server_name was not sent as SNI")
        self.assertEqual(backend.conns[0].header("X-Forwarded-Proto"), "http")

    async def test_tls_upstream_wss_to_wss(self):
        tb, backend = await self.start_tls_backend(self.backend_cert)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert,
                                                    "server_name": "backend.test"},
                                listener_tls={"certificates": [{"cert": self.edge.cert,
                                                                "key": self.edge.key}]})
        ctx = h.client_ssl_context(self.ca.cert)
        async with h.wss_connect(gw.port, ctx, "a.test") as ws:
            await ws.send("both legs TLS")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "both legs TLS")
        self.assertEqual(backend.conns[0].tls_version, "TLSv1.3")
        self.assertEqual(backend.conns[0].header("X-Forwarded-Proto"), "https")

    async def test_tls_upstream_wrong_ca_gives_502(self):
        _, backend = await self.start_tls_backend(self.backend_cert)
        gw = await self.gateway([backend.address], {"ca": self.other_ca.cert,
                                                    "server_name": "backend.test"})
        await self.expect_502(gw, "certificate verify failed")
        self.assertEqual(backend.requests, [], "the request went to an unverified backend")

    async def test_tls_upstream_impostor_certificate_gives_502(self):
        # The right name, signed by a CA the gateway does not trust.
        _, backend = await self.start_tls_backend(self.impostor)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert,
                                                    "server_name": "backend.test"})
        await self.expect_502(gw, "certificate verify failed")
        self.assertEqual(backend.requests, [])

    async def test_tls_upstream_wrong_server_name_gives_502(self):
        _, backend = await self.start_tls_backend(self.backend_cert)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert,
                                                    "server_name": "other.test"})
        await self.expect_502(gw)
        self.assertEqual(backend.requests, [])

    async def test_tls_upstream_default_name_is_server_host(self):
        # No server_name: the server's host (here the IP 127.0.0.1) must be in the cert.
        _, backend = await self.start_tls_backend(self.backend_ip_cert)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert})
        await self.echo_once(gw)

    async def test_tls_upstream_default_name_mismatch_gives_502(self):
        # backend.test's certificate does not cover 127.0.0.1.
        _, backend = await self.start_tls_backend(self.backend_cert)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert})
        await self.expect_502(gw)
        self.assertEqual(backend.requests, [])

    async def test_tls_upstream_default_ca_is_system_store(self):
        # Our test CA is not in the system store: verification fails.
        _, backend = await self.start_tls_backend(self.backend_cert)
        gw = await self.gateway([backend.address], {"server_name": "backend.test"})
        await self.expect_502(gw, "certificate verify failed")

    async def test_tls_upstream_verify_false_accepts_unverified(self):
        _, backend = await self.start_tls_backend(self.impostor)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert, "verify": False,
                                                    "server_name": "backend.test"})
        await self.echo_once(gw)

    async def test_tls_upstream_failed_verification_tries_next_server(self):
        _, bad = await self.start_tls_backend(self.impostor)
        _, good = await self.start_tls_backend(self.backend_cert)
        gw = await self.gateway([bad.address, good.address],
                                {"ca": self.ca.cert, "server_name": "backend.test"})
        await self.echo_once(gw)
        self.assertEqual(bad.requests, [])
        self.assertEqual(len(good.conns), 1)

    async def test_tls_upstream_client_certificate(self):
        tb, backend = await self.start_tls_backend(self.backend_cert,
                                                   client_ca=self.client_ca.cert)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert,
                                                    "server_name": "backend.test",
                                                    "cert": self.gw_client.cert,
                                                    "key": self.gw_client.key})
        await self.echo_once(gw)
        self.assertEqual(tb.peer_subjects[0].get("commonName"), "wsgate.gateway")

    async def test_tls_upstream_without_required_client_certificate_gives_502(self):
        _, backend = await self.start_tls_backend(self.backend_cert,
                                                  client_ca=self.client_ca.cert)
        gw = await self.gateway([backend.address], {"ca": self.ca.cert,
                                                    "server_name": "backend.test"})
        resp = await h.http_exchange("127.0.0.1", gw.port, h.upgrade_request("/echo"))
        h.assert_error_response(self, resp, 502, "backend requires a client certificate")
        self.assertEqual(backend.conns, [])


if __name__ == "__main__":
    h.main()
