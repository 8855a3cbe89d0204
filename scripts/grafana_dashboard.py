#!/usr/bin/env python3
"""Writes metrics/grafana-dashboard.json: one panel (or more) for every metric family of
metrics/metric_names.h, each query filtered by the dashboard's job and instance
variables, and by its route variable where the family has a route label. Edit the
panels here and run it again:

  scripts/grafana_dashboard.py [output path]
"""

import json
import os
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job",instance=~"$instance"'
SEL_ROUTE = SEL + ',route=~"$route"'
RATE = "[$__rate_interval]"


def rate(metric, sel=SEL, by=None):
    inner = f"rate({metric}{{{sel}}}{RATE})"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantiles(metric, by, qs=(0.5, 0.99), sel=SEL):
    return [(f"histogram_quantile({q}, sum by (le{', ' + by if by else ''}) "
             f"(rate({metric}_bucket{{{sel}}}{RATE})))",
             f"p{int(q * 100)}" + (f" {{{{{by}}}}}" if by else "")) for q in qs]


# (title, unit, [(expr, legend)], kind); kind "stat" or "timeseries".
ROWS = [
    ("Overview", [
        ("Live WebSocket connections", "short",
         [(f"sum(wsgate_connections_active{{{SEL_ROUTE}}})", "live")], "stat"),
        ("New connections /s", "ops", [(rate("wsgate_connections_total", SEL_ROUTE), "new")],
         "stat"),
        ("Messages /s", "ops", [(rate("wsgate_messages_total"), "messages")], "stat"),
        ("Relayed bytes /s", "Bps", [(rate("wsgate_bytes_total"), "bytes")], "stat"),
        ("Running versions", "short",
         [("count by (version, commit, openssl) "
           f"(wsgate_build_info{{{SEL}}})", "{{version}} {{commit}} (OpenSSL {{openssl}})")],
         "timeseries"),
    ]),
    ("Connections and handshakes", [
        ("Live connections by route", "short",
         [(f"sum by (route) (wsgate_connections_active{{{SEL_ROUTE}}})", "{{route}}")],
         "timeseries"),
        ("Live connections by server", "short",
         [(f"sum by (upstream, server) (wsgate_connections_active{{{SEL_ROUTE}}})",
           "{{upstream}} {{server}}")], "timeseries"),
        ("New connections /s by route and protocol", "ops",
         [(rate("wsgate_connections_total", SEL_ROUTE, "route, protocol"),
           "{{route}} {{protocol}}")], "timeseries"),
        ("Handshakes by status /s", "ops",
         [(rate("wsgate_handshakes_total", SEL, "listener, status"), "{{listener}} {{status}}")],
         "timeseries"),
        ("Handshake latency (accept to 101) by route", "s",
         quantiles("wsgate_handshake_duration_seconds", "route", sel=SEL_ROUTE), "timeseries"),
        ("Connection duration by route", "s",
         quantiles("wsgate_connection_duration_seconds", "route", (0.5, 0.9), SEL_ROUTE),
         "timeseries"),
        ("Closes by side and code /s", "ops",
         [(rate("wsgate_closes_total", SEL, "side, code"), "{{side}} {{code}}")], "timeseries"),
        ("Ping timeouts /s by side", "ops",
         [(rate("wsgate_ping_timeouts_total", SEL, "side"), "{{side}}")], "timeseries"),
    ]),
    ("HTTP forwarding", [
        ("HTTP requests /s by route and class", "ops",
         [(rate("wsgate_http_requests_total", SEL_ROUTE, "route, class"), "{{route}} {{class}}")],
         "timeseries"),
        ("HTTP request duration by route", "s",
         quantiles("wsgate_http_request_duration_seconds", "route", sel=SEL_ROUTE),
         "timeseries"),
        ("Idle upstream keep-alive connections", "short",
         [(f"sum by (upstream, server) (wsgate_upstream_idle_connections{{{SEL}}})",
           "{{upstream}} {{server}}")], "timeseries"),
        ("Upstream pool hits, misses and idle closes /s", "ops",
         [(rate("wsgate_upstream_pool_hits_total", SEL, "upstream"), "{{upstream}} hits"),
          (rate("wsgate_upstream_pool_misses_total", SEL, "upstream"), "{{upstream}} misses"),
          (rate("wsgate_upstream_idle_closes_total", SEL, "upstream, reason"),
           "{{upstream}} closed: {{reason}}")], "timeseries"),
    ]),
    ("Edge authentication", [
        ("Auth decisions /s by route and result", "ops",
         [(rate("wsgate_auth_decisions_total", SEL_ROUTE, "route, result"),
           "{{route}} {{result}}")], "timeseries"),
        ("Forward-auth cache hit ratio by route", "percentunit",
         [(f"sum by (route) (rate(wsgate_auth_cache_lookups_total{{{SEL_ROUTE},result=\"hit\"}}"
           f"{RATE})) / sum by (route) (rate(wsgate_auth_cache_lookups_total{{{SEL_ROUTE}}}"
           f"{RATE}))", "{{route}}")], "timeseries"),
        ("Forward-auth cache lookups /s by route and result", "ops",
         [(rate("wsgate_auth_cache_lookups_total", SEL_ROUTE, "route, result"),
           "{{route}} {{result}}")], "timeseries"),
        ("Forward-auth subrequest duration by route", "s",
         quantiles("wsgate_auth_subrequest_duration_seconds", "route", sel=SEL_ROUTE),
         "timeseries"),
        ("WebSockets closed at token expiry /s by route", "ops",
         [(rate("wsgate_auth_expired_closes_total", SEL_ROUTE, "route"), "{{route}}")],
         "timeseries"),
    ]),
    ("Traffic", [
        ("Messages /s by direction and type", "ops",
         [(rate("wsgate_messages_total", SEL, "direction, opcode"), "{{direction}} {{opcode}}")],
         "timeseries"),
        ("Bytes /s by direction", "Bps",
         [(rate("wsgate_bytes_total", SEL, "direction"), "{{direction}}")], "timeseries"),
        ("Bytes /s moved by splice(2), unread, by direction", "Bps",
         [(rate("wsgate_spliced_bytes_total", SEL, "direction"), "{{direction}}")],
         "timeseries"),
        ("Frames /s by opcode", "ops",
         [(rate("wsgate_frames_total", SEL, "opcode"), "{{opcode}}")], "timeseries"),
        ("CONNECT tunnel bytes /s by direction", "Bps",
         [(rate("wsgate_tunnel_bytes_total", SEL, "direction"), "{{direction}}")], "timeseries"),
        ("CONNECT tunnel ends /s", "ops",
         [(rate("wsgate_tunnel_ends_total", SEL, "end"), "{{end}}")], "timeseries"),
        ("Busiest live connections (bytes /s)", "Bps",
         [(f"topk(10, sum by (id, route, server) (rate(wsgate_connection_bytes_total"
           f"{{{SEL_ROUTE}}}{RATE})))", "{{id}} {{route}} {{server}}")], "timeseries"),
        ("Busiest live connections (messages /s)", "ops",
         [(f"topk(10, sum by (id, route, server) (rate(wsgate_connection_messages_total"
           f"{{{SEL_ROUTE}}}{RATE})))", "{{id}} {{route}} {{server}}")], "timeseries"),
        ("Connections left out of the per-connection series", "short",
         [(f"wsgate_connection_series_dropped{{{SEL}}}", "{{instance}}")], "timeseries"),
    ]),
    ("Upstreams", [
        ("Upstream connect latency", "s",
         quantiles("wsgate_upstream_connect_duration_seconds", "upstream"), "timeseries"),
        ("Upstream connect failures /s", "ops",
         [(rate("wsgate_upstream_connect_failures_total", SEL, "upstream, reason"),
           "{{upstream}} {{reason}}")], "timeseries"),
        ("Upstream connect retries /s", "ops",
         [(rate("wsgate_upstream_connect_retries_total", SEL, "upstream"), "{{upstream}}")],
         "timeseries"),
        ("Upstream servers up", "short",
         [(f"min by (upstream, server) (wsgate_upstream_server_up{{{SEL}}})",
           "{{upstream}} {{server}}")], "timeseries"),
        ("Upstream server connections", "short",
         [(f"max by (upstream, server) (wsgate_upstream_server_connections{{{SEL}}})",
           "{{upstream}} {{server}}")], "timeseries"),
        ("Health transitions /s", "ops",
         [(rate("wsgate_upstream_server_health_transitions_total", SEL, "upstream, server, to"),
           "{{upstream}} {{server}} {{to}}")], "timeseries"),
        ("Rebalanced connections /s", "ops",
         [(rate("wsgate_upstream_rebalanced_connections_total", SEL, "upstream, server"),
           "{{upstream}} {{server}}")], "timeseries"),
    ]),
    ("Edge: TLS, PROXY protocol, limits", [
        ("TLS handshakes /s by version", "ops",
         [(rate("wsgate_tls_handshakes_total", SEL, "listener, version"),
           "{{listener}} {{version}}")], "timeseries"),
        ("TLS handshake failures /s by reason", "ops",
         [(rate("wsgate_tls_handshake_failures_total", SEL, "listener, reason"),
           "{{listener}} {{reason}}")], "timeseries"),
        ("Certificate expiry (days left)", "short",
         [(f"min by (listener, cert) (wsgate_tls_certificate_expiry_timestamp_seconds{{{SEL}}}"
           " - time()) / 86400", "{{listener}} {{cert}}")], "timeseries"),
        ("PROXY protocol headers /s", "ops",
         [(rate("wsgate_proxy_protocol_headers_total", SEL, "version"), "{{version}}")],
         "timeseries"),
        ("PROXY protocol rejections /s", "ops",
         [(rate("wsgate_proxy_protocol_rejections_total", SEL, "reason"), "{{reason}}")],
         "timeseries"),
        ("Limit rejections /s", "ops",
         [(rate("wsgate_limit_rejections_total", SEL, "limit"), "{{limit}}")], "timeseries"),
        ("accept() errors /s", "ops",
         [(rate("wsgate_accept_errors_total", SEL, "reason"), "{{reason}}")], "timeseries"),
    ]),
    ("Process and configuration", [
        ("Process CPU", "percentunit",
         [(f"rate(process_cpu_seconds_total{{{SEL}}}{RATE})", "{{instance}}")], "timeseries"),
        ("Resident memory", "bytes",
         [(f"process_resident_memory_bytes{{{SEL}}}", "{{instance}}")], "timeseries"),
        ("Virtual memory", "bytes",
         [(f"process_virtual_memory_bytes{{{SEL}}}", "{{instance}}")], "timeseries"),
        ("Open file descriptors", "short",
         [(f"process_open_fds{{{SEL}}}", "open {{instance}}"),
          (f"process_max_fds{{{SEL}}}", "max {{instance}}")], "timeseries"),
        ("Threads", "short", [(f"process_threads{{{SEL}}}", "{{instance}}")], "timeseries"),
        ("Uptime", "s", [(f"time() - process_start_time_seconds{{{SEL}}}", "{{instance}}")],
         "timeseries"),
        ("Workers and scrape misses", "short",
         [(f"wsgate_workers{{{SEL}}}", "workers {{instance}}"),
          (f"wsgate_scrape_workers_missing{{{SEL}}}", "missing {{instance}}")], "timeseries"),
        ("Configuration reloads /s", "ops",
         [(rate("wsgate_config_reloads_total", SEL, "instance, result"),
           "{{instance}} {{result}}")], "timeseries"),
        ("Time since the last successful reload", "s",
         [(f"time() - (wsgate_config_last_reload_success_timestamp_seconds{{{SEL}}} > 0)",
           "{{instance}}")], "timeseries"),
    ]),
]


def variable(name, label, query):
    return {"name": name, "type": "query", "label": label, "datasource": DS,
            "query": {"query": query, "refId": name}, "definition": query,
            "includeAll": True, "multi": True, "refresh": 2,
            "current": {"text": "All", "value": "$__all"}}


def dashboard():
    panels, next_id, y = [], 1, 0
    for row_title, row in ROWS:
        panels.append({"id": next_id, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
        next_id += 1
        y += 1
        x = 0
        for title, unit, exprs, kind in row:
            w, hgt = (6, 4) if kind == "stat" else (12, 8)
            if x + w > 24:
                x, y = 0, y + hgt
            panel = {"id": next_id, "type": kind, "title": title, "datasource": DS,
                     "gridPos": {"x": x, "y": y, "w": w, "h": hgt},
                     "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                     "targets": [{"refId": chr(ord("A") + i), "expr": e, "legendFormat": lg,
                                  "datasource": DS} for i, (e, lg) in enumerate(exprs)]}
            if kind == "stat":
                panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]},
                                    "colorMode": "value"}
            panels.append(panel)
            next_id += 1
            x += w
        y += 8
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "title": "wsgate", "uid": "wsgate-overview", "tags": ["wsgate", "websocket"],
        "schemaVersion": 38, "version": 2, "editable": True, "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Data source"},
            variable("job", "Job", "label_values(wsgate_workers, job)"),
            variable("instance", "Instance", 'label_values(wsgate_workers{job=~"$job"}, instance)'),
            variable("route", "Route",
                     'label_values(wsgate_handshake_duration_seconds_count'
                     '{job=~"$job",instance=~"$instance"}, route)'),
        ]},
        "panels": panels,
    }


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "metrics",
                                                              "grafana-dashboard.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(dashboard(), f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
