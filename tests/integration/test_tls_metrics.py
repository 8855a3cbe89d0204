"""TLS handshakes in /metrics: completed ones by version, failed ones by reason.

Two wss connections (TLS 1.3 and TLS 1.2), one connection sending garbage and one plain
HTTP request to the TLS port must move wsgate_tls_handshakes_total and
wsgate_tls_handshake_failures_total by exactly that much.
"""

import asyncio
import os
import ssl
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402


class TlsMetrics(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.cert = pki.leaf("a", cls.ca, ["a.test"])

    async def test_handshakes_and_failures_are_counted(self):
        backend = await self.start_backend()
        admin_port = h.free_port()
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                            [{"path": "/echo", "upstream": "echo"}],
                            listener={"name": "tls-in"},
                            listener_tls={"certificates": [{"cert": self.cert.cert,
                                                            "key": self.cert.key}]})
        gw = await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        before = await admin.metrics()

        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = h.client_ssl_context(self.ca.cert)
            ctx.minimum_version = ctx.maximum_version = version
            async with h.wss_connect(gw.port, ctx, "a.test") as ws:
                await ws.send("x")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")

        for junk in (b"\x00\x01\x02" + os.urandom(300), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"):
            conn = await h.RawConn.open("127.0.0.1", gw.port)
            try:
                await conn.send(junk)
                _, closed = await conn.read_until_eof(5)
                self.assertTrue(closed, "the gateway kept a garbage connection open")
            finally:
                conn.close()

        async def counted():
            after = await admin.metrics()
            failures = (after.value("wsgate_tls_handshake_failures_total", listener="tls-in")
                        - before.value("wsgate_tls_handshake_failures_total", listener="tls-in"))
            return after if failures >= 2 else None

        after = None
        for _ in range(100):  # up to 10 s
            after = await counted()
            if after:
                break
            await asyncio.sleep(0.1)
        self.assertIsNotNone(after, "failures never reached /metrics")

        def delta(name, **labels):
            return after.value(name, **labels) - before.value(name, **labels)

        self.assertEqual(delta("wsgate_tls_handshakes_total", listener="tls-in",
                               version="TLSv1.3"), 1)
        self.assertEqual(delta("wsgate_tls_handshakes_total", listener="tls-in",
                               version="TLSv1.2"), 1)
        self.assertEqual(delta("wsgate_tls_handshake_failures_total", listener="tls-in"), 2)
        self.assertEqual(delta("wsgate_tls_handshake_failures_total", listener="tls-in",
                               reason="http request"), 1)


if __name__ == "__main__":
    h.main()
