"""HTTP/1.1 CONNECT tunnels (RFC 9110 9.3.6) with curl and raw sockets as clients.

Allowed targets work (curl --proxytunnel to a local http.server), denied ones get 403
with the reason, loopback reached by name (localhost) is denied unless a cidr rule names
it, malformed requests get 400, listeners without connect get 405, an unreachable target
gets 502, and the access log line carries target, bytes and status.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402

BODY = b"hello through the tunnel\n" * 100


class ConnectH1Tunnel(h.GatewayCase):
    async def start(self, allow_for_port, **kw):
        self.web = ch.HttpServer({"index.html": BODY})
        await self.web.__aenter__()
        self.addAsyncCleanup(self.web.__aexit__, None, None, None)
        port = h.free_port()
        gw = await self.start_gateway(ch.connect_config(port, allow_for_port(self.web.port), **kw))
        return gw

    async def test_h1_connect_allowed_target_via_curl(self):
        gw = await self.start(lambda p: [{"cidr": "127.0.0.1/32", "ports": [p]}])
        rc, out, err = await ch.curl("-x", f"http://127.0.0.1:{gw.port}", "--proxytunnel",
                                     f"http://127.0.0.1:{self.web.port}/index.html")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, BODY)
        line = await gw.wait_access_line(lambda f: f.get("target") == f"127.0.0.1:{self.web.port}",
                                         "the tunnel")
        self.assertEqual(line["status"], "200")
        self.assertEqual(line["upstream"], f"127.0.0.1:{self.web.port}")
        self.assertGreater(int(line["u2c_bytes"]), len(BODY))
        self.assertGreater(int(line["c2u_bytes"]), 0)

    async def test_h1_connect_denied_port_gets_403_with_reason(self):
        gw = await self.start(lambda p: [{"cidr": "127.0.0.1/32", "ports": [p]}])
        rc, _, err = await ch.curl("-x", f"http://127.0.0.1:{gw.port}", "--proxytunnel",
                                   f"http://127.0.0.1:{self.web.port + 1}/")
        self.assertNotEqual(rc, 0)
        self.assertIn(b"403", err)
        sock, head = await ch.raw_connect(gw.port, f"127.0.0.1:{self.web.port + 1}")
        try:
            self.assertTrue(head.startswith(b"HTTP/1.1 403 "), head)
            sock.settimeout(5)
            body = sock.recv(4096)
        finally:
            sock.close()
        self.assertIn(f"no [[connect.allow]] rule allows port {self.web.port + 1}".encode(), body)

    async def test_h1_connect_name_resolving_to_loopback_is_denied(self):
        # A host rule for the name does not open the loopback range it resolves to.
        gw = await self.start(lambda p: [{"host": "localhost", "ports": [p]}])
        rc, _, err = await ch.curl("-x", f"http://127.0.0.1:{gw.port}", "--proxytunnel",
                                   f"http://localhost:{self.web.port}/index.html")
        self.assertNotEqual(rc, 0)
        self.assertIn(b"403", err)
        line = await gw.wait_access_line(lambda f: f.get("status") == "403", "the refusal")
        self.assertIn("loopback 127.0.0.0/8", line["reason"])

    async def test_h1_connect_name_allowed_when_loopback_is_allowed(self):
        gw = await self.start(lambda p: [{"cidr": "127.0.0.0/8", "ports": [p]},
                                         {"cidr": "::1/128", "ports": [p]}])
        rc, out, err = await ch.curl("-x", f"http://127.0.0.1:{gw.port}", "--proxytunnel",
                                     f"http://localhost:{self.web.port}/index.html")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, BODY)

    async def test_h1_connect_malformed_requests_get_400(self):
        gw = await self.start(lambda p: [{"cidr": "127.0.0.1/32", "ports": [p]}])
        for target in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "user@127.0.0.1:80",
                       ":80", "[::1:80"):
            resp = await h.http_exchange(
                "127.0.0.1", gw.port, f"CONNECT {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            self.assertEqual(resp.status, 400, (target, resp))
            self.assertIn(b"invalid CONNECT target", resp.body)
        resp = await h.http_exchange(
            "127.0.0.1", gw.port,
            f"CONNECT 127.0.0.1:{self.web.port} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
            "hello".encode())
        self.assertEqual(resp.status, 400)
        self.assertIn(b"carries no body", resp.body)

    async def test_h1_connect_unreachable_target_gets_502(self):
        closed = h.free_port()
        gw = await self.start(lambda p: [{"cidr": "127.0.0.1/32", "ports": [p, closed]}])
        resp = await h.http_exchange(
            "127.0.0.1", gw.port, f"CONNECT 127.0.0.1:{closed} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertEqual(resp.status, 502, resp)
        self.assertIn(b"cannot connect to 127.0.0.1", resp.body)

    async def test_h1_connect_on_listener_without_connect_gets_405(self):
        gw = await self.start(lambda p: [{"cidr": "127.0.0.1/32", "ports": [p]}],
                              listener_connect=False)
        resp = await h.http_exchange(
            "127.0.0.1", gw.port,
            f"CONNECT 127.0.0.1:{self.web.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertEqual(resp.status, 405, resp)
        self.assertIn(b"CONNECT tunnels are not enabled on this listener", resp.body)

    async def test_h1_connect_no_rules_denies_everything(self):
        gw = await self.start(lambda p: [])
        resp = await h.http_exchange(
            "127.0.0.1", gw.port,
            f"CONNECT 127.0.0.1:{self.web.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertEqual(resp.status, 403, resp)


if __name__ == "__main__":
    h.main()
