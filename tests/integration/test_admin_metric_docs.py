"""Every metric defined in metrics/metric_names.h is exposed by a running gateway and
documented in docs/metrics.md; the Grafana dashboard queries only metrics that exist."""

import json
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402


def read(rel):
    with open(os.path.join(h.SOURCE_DIR, rel), encoding="utf-8") as f:
        return f.read()


DEFINED = set(re.findall(r'MetricDef k\w+\{\s*"((?:wsgate|process)_[a-z_]+)"',
                         read("metrics/metric_names.h")))


class MetricDocs(h.GatewayCase):
    def test_names_found(self):
        self.assertGreaterEqual(len(DEFINED), 15, DEFINED)

    def test_every_metric_documented(self):
        doc = read("docs/metrics.md")
        for name in sorted(DEFINED):
            self.assertIn(f"`{name}`", doc, f"{name} missing from docs/metrics.md")

    def grafana_exprs(self):
        dash = json.loads(read("metrics/grafana-dashboard.json"))
        return [t["expr"] for panel in dash["panels"] for t in panel.get("targets", [])]

    @staticmethod
    def families_in(expr):
        return {re.sub(r"_(bucket|count|sum)$", "", n) for n in
                re.findall(r"\b((?:wsgate|process)_[a-z_]+)", expr)}

    def test_grafana_queries_defined_metrics(self):
        used = set()
        for expr in self.grafana_exprs():
            used |= self.families_in(expr)
        self.assertTrue(used)
        self.assertEqual(used - DEFINED, set())
        # Every family has a panel (scripts/grafana_dashboard.py writes the dashboard).
        self.assertEqual(DEFINED - used, set(), "families without a Grafana panel")

    def test_grafana_filters_by_instance_and_route(self):
        # The families with a route label (metrics/exposition.cc).
        by_route = {"wsgate_connections_active", "wsgate_connections_total",
                    "wsgate_handshake_duration_seconds", "wsgate_connection_duration_seconds",
                    "wsgate_http_requests_total", "wsgate_http_request_duration_seconds",
                    "wsgate_connection_bytes_total", "wsgate_connection_messages_total",
                    "wsgate_auth_decisions_total", "wsgate_auth_cache_lookups_total",
                    "wsgate_auth_subrequest_duration_seconds",
                    "wsgate_auth_expired_closes_total"}
        for expr in self.grafana_exprs():
            for family in self.families_in(expr):
                with self.subTest(expr=expr, family=family):
                    selector = re.search(re.escape(family) + r"(?:_bucket|_count|_sum)?\{([^}]*)\}",
                                         expr)
                    self.assertIsNotNone(selector, "a query without label filters")
                    self.assertIn('instance=~"$instance"', selector.group(1))
                    self.assertIn('job=~"$job"', selector.group(1))
                    if family in by_route:
                        self.assertIn('route=~"$route"', selector.group(1))

    async def test_every_metric_exposed(self):
        backend = await self.start_backend()
        admin_port = h.free_port()
        # Per-connection series on, so that their families are exposed too.
        # A forward-auth route whose auth service is down: its request gives the auth
        # families (decision, cache lookup, subrequest duration) their series.
        authed = ('[[upstream]]\nname = "auth"\nservers = ["127.0.0.1:%d"]\n'
                  '[[route]]\npath = "/authed"\nupstream = "auth"\n'
                  '[route.auth]\ntype = "forward"\nupstream = "auth"\ncache_ttl = "1s"\n'
                  % h.free_port())
        gw = await self.start_gateway(ac.with_admin(
            h.simple_config(h.free_port(), [backend.address]), admin_port)
            + "per_connection_metrics = true\n" + authed)
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        async with h.ws_connect(gw.port) as ws:  # so labelled families have a series
            await ws.send("x")
            await ws.recv()
        # A plain request is forwarded (the backend answers it with its own 426): the HTTP
        # request family gets a series.
        plain = await h.http_exchange("127.0.0.1", gw.port,
                                      b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertEqual(plain.status, 426, plain.raw)
        refused = await h.http_exchange(
            "127.0.0.1", gw.port, b"GET /authed HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertEqual(refused.status, 503, refused.raw)
        async with h.ws_connect(gw.port) as live:  # open during the scrape
            await live.send("y")
            await live.recv()
            m = await admin.wait_metrics(
                lambda m: m.value("wsgate_closes_total") >= 1
                and m.has("wsgate_connection_bytes_total")
                and m.has("wsgate_http_requests_total"), "a close and a live connection")
        exposed = {re.sub(r"_(bucket|sum|count)$", "", n) for n, _, _ in m.samples}
        # Series that only a TLS listener creates; test_tls_metrics.py checks them.
        needs_tls = {"wsgate_tls_handshakes_total", "wsgate_tls_handshake_failures_total",
                     "wsgate_tls_certificate_expiry_timestamp_seconds"}
        # Only a relayed WebSocket whose JWT expires creates it; the JWT tests check it.
        needs_jwt = {"wsgate_auth_expired_closes_total"}
        self.assertEqual(DEFINED - needs_tls - needs_jwt - exposed, set())
        for name in DEFINED - needs_tls:
            self.assertIn(f"# HELP {name} ", m.text)


if __name__ == "__main__":
    h.main()
