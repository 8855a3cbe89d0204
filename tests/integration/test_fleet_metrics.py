"""Fleet observability in /metrics: upstream connect latency, failures and retries by
upstream; the route label on the latency histograms; the listeners' certificate expiry,
set at start and again by a reload that loads another certificate."""

import asyncio
import calendar
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402


def not_after(cert_path):
    out = h.run_tool([h.OPENSSL_BIN, "x509", "-in", cert_path, "-noout", "-enddate"]).stdout
    # notAfter=Jan  6 01:30:00 2027 GMT
    text = out.strip().split("=", 1)[1]
    return calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y %Z"))


class UpstreamConnectMetrics(h.GatewayCase):
    async def test_connect_latency_failures_and_retries_by_upstream(self):
        backend = await self.start_backend()
        dead = f"127.0.0.1:{h.free_port()}"  # nothing listens: connect is refused
        admin_port = h.free_port()
        text = h.make_config(f"127.0.0.1:{h.free_port()}",
                             {"pair": [dead, backend.address], "gone": [dead]},
                             [{"name": "chat", "path": "/echo", "upstream": "pair"},
                              {"name": "gone", "path": "/gone", "upstream": "gone"}])
        # Round robin with one retry: the dead server is tried first about every other
        # connection, and its refusal is retried on the live one.
        text = text.replace('servers = ', 'balancer = "round_robin"\nretries = 1\nservers = ', 1)
        gw = await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        # An upstream whose one server refuses: 502, one failure, nothing to retry on.
        conn = await h.RawConn.open("127.0.0.1", gw.port)
        async with conn:
            await conn.send(h.upgrade_request("/gone", "127.0.0.1"))
            data, closed = await conn.read_until_eof(10)
        self.assertEqual(h.response_from(data, closed, 0).status, 502)
        # Six WebSockets over two workers: one worker takes two at least, and its round
        # robin tries the dead server for one of them (or another worker's failure ejected
        # it already).
        for i in range(6):
            async with h.ws_connect(gw.port) as ws:
                await ws.send(str(i))
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), str(i))
        m = await admin.wait_metrics(
            lambda m: m.value("wsgate_connections_total") >= 6
            and m.value("wsgate_closes_total") >= 6, "six relayed and closed connections")
        failures = m.value("wsgate_upstream_connect_failures_total", upstream="pair",
                           reason="connect")
        retries = m.value("wsgate_upstream_connect_retries_total", upstream="pair")
        self.assertGreaterEqual(failures, 1, m.text)
        # Every refused attempt was retried on the live server (no client saw an error).
        self.assertEqual(retries, failures, m.text)
        self.assertEqual(m.value("wsgate_upstream_connect_failures_total", upstream="pair",
                                 reason="tls"), 0)
        self.assertEqual(m.value("wsgate_upstream_connect_failures_total", upstream="gone",
                                 reason="connect"), 1, m.text)
        self.assertEqual(m.value("wsgate_upstream_connect_retries_total", upstream="gone"), 0)
        # One new connection per WebSocket reached the live server (plus the harness's
        # startup probe, which is not routed to /echo).
        opened = m.value("wsgate_upstream_connect_duration_seconds_count", upstream="pair")
        self.assertEqual(opened, 6, m.text)
        self.assertLess(m.value("wsgate_upstream_connect_duration_seconds_sum",
                                upstream="pair"), 6 * 5.0)
        # The latency histograms carry the route.
        self.assertEqual(m.value("wsgate_handshake_duration_seconds_count", route="chat"), 6)
        self.assertEqual(m.value("wsgate_connection_duration_seconds_count", route="chat"), 6)


class CertificateExpiry(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.first = pki.leaf("first", cls.ca, ["a.test"])
        cls.second = pki.leaf("second", cls.ca, ["a.test"])

    def config(self, backend, port, cert):
        return h.tls_config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                            [{"path": "/echo", "upstream": "echo"}],
                            listener={"name": "tls-in"},
                            listener_tls={"certificates": [{"cert": cert.cert,
                                                            "key": cert.key}]})

    async def test_expiry_gauge_set_on_load_and_reload(self):
        backend = await self.start_backend()
        admin_port, port = h.free_port(), h.free_port()
        gw = await self.start_gateway(ac.with_admin(self.config(backend, port, self.first),
                                                    admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        m = await admin.metrics()
        name = "wsgate_tls_certificate_expiry_timestamp_seconds"
        self.assertEqual(m.value(name, listener="tls-in", cert=self.first.cert),
                         not_after(self.first.cert), m.text)
        # The gauge is in the future, within the 30 days the test PKI gives.
        self.assertGreater(m.value(name, listener="tls-in"), time.time())

        rh.write_config(gw, ac.with_admin(self.config(backend, port, self.second), admin_port))
        await rh.sighup(gw, rh.RELOADED)
        m = await admin.metrics()
        self.assertEqual(m.value(name, listener="tls-in", cert=self.second.cert),
                         not_after(self.second.cert), m.text)
        self.assertFalse(any(n == name and ls.get("cert") == self.first.cert
                             for n, ls, _ in m.samples), "the replaced certificate is gone")


if __name__ == "__main__":
    h.main()
