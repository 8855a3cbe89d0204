"""A page and its WebSocket from one origin, through wsgate alone (issue 15): headless
Chromium loads a page through the gateway (forwarded to a small page server), the page
opens a WebSocket back to the same origin (relayed to the echo backend), echoes a
message and reports it with a fetch() that goes through the gateway too.

Over HTTP/1.1 (a plain listener, http://) and over HTTP/2 (a TLS listener, https://,
ALPN h2): there the page itself comes over HTTP/2 and Chromium opens the WebSocket on
the same connection with RFC 8441. Skipped (saying why) without /usr/bin/chromium.
"""

import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser as b  # noqa: E402
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

PAGE = b"""<html><head><title>same origin</title></head><body><pre id=log></pre><script>
const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
const ws = new WebSocket(scheme + location.host + '/echo');
ws.onopen = () => ws.send('hello from the page');
ws.onmessage = (e) => {
  ws.close(1000);
  fetch('/report?echo=' + encodeURIComponent(e.data));
};
ws.onerror = () => fetch('/report?error=1');
</script></body></html>"""


@b.needs_chromium
class SameOrigin(h.GatewayCase):
    async def run_page(self, tls: bool) -> list:
        tmp = tempfile.mkdtemp(prefix="wsgate-same-origin-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert = c.make_certificate(tmp) if tls else None
        echo = await self.start_backend(compression=None)
        reports = []
        page_port = b.serve_page(self, PAGE, reports.append)  # plain HTTP/1.1 upstream
        port = h.free_port()
        self.gw = await self.start_gateway(c.config(
            f"127.0.0.1:{port}", {"echo": [echo.address], "pages": [f"127.0.0.1:{page_port}"]},
            [{"name": "ws", "path": "/echo", "upstream": "echo"},
             {"name": "pages", "path": "/", "upstream": "pages"}], tls=cert, workers=1))
        url = f"https://localhost:{port}/" if tls else f"http://127.0.0.1:{port}/"
        async with b.chromium(url, os.path.join(tmp, "profile"), "--ignore-certificate-errors"):
            await h.wait_until(lambda: reports, 60, "the page to report the echo")
        self.assertEqual(reports[0], "/report?echo=hello%20from%20the%20page")
        return reports

    async def lines(self):
        page = await self.gw.wait_access_line(
            lambda f: f.get("route") == "pages" and f.get("path") == "/", "the page")
        ws = await self.gw.wait_access_line(lambda f: f.get("route") == "ws", "the WebSocket")
        report = await self.gw.wait_access_line(
            lambda f: f.get("path", "").startswith("/report"), "the report")
        return page, ws, report

    async def test_page_and_websocket_over_http1(self):
        await self.run_page(tls=False)
        page, ws, report = await self.lines()
        self.assertEqual((page["method"], page["status"], page["proto"]),
                         ("GET", "200", "http/1.1"))
        self.assertEqual((ws["status"], ws["proto"]), ("101", "http/1.1"))
        self.assertEqual((ws["c2u_msgs"], ws["u2c_msgs"]), ("1", "1"), ws)
        self.assertEqual(report["status"], "200")

    async def test_page_and_websocket_over_http2(self):
        await self.run_page(tls=True)
        page, ws, report = await self.lines()
        self.assertEqual((page["method"], page["status"], page["proto"]), ("GET", "200", "h2"))
        # RFC 8441: the WebSocket is a stream of the connection the page came over.
        self.assertEqual((ws["status"], ws["proto"]), ("200", "h2"), ws)
        self.assertEqual((ws["c2u_msgs"], ws["u2c_msgs"]), ("1", "1"), ws)
        self.assertEqual((report["status"], report["proto"]), ("200", "h2"))


if __name__ == "__main__":
    h.main()
