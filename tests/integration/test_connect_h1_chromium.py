"""A real browser through the tunnel: headless Chromium with wsgate as its explicit proxy
(--proxy-server) loads a page directly (bypass rule for the page's port) and opens
ws:// to a backend; Chromium sends WebSockets through an HTTP proxy as a CONNECT tunnel,
so the access log shows a CONNECT to the backend and the echo reaches the page.
Skipped (saying why) when /usr/bin/chromium is not installed.
"""

import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser as b  # noqa: E402
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402

PAGE = """<html><body><script>
const ws = new WebSocket('ws://127.0.0.1:BACKEND/chat');
ws.onopen = () => ws.send('hello through the proxy');
ws.onmessage = (e) => { ws.close(1000); fetch('/report?echo=' + encodeURIComponent(e.data)); };
ws.onerror = () => fetch('/report?error=1');
</script></body></html>"""


@b.needs_chromium
class ChromiumThroughTunnel(h.GatewayCase):
    async def test_chromium_ws_through_connect_proxy(self):
        tmp = tempfile.mkdtemp(prefix="wsgate-chromium-")
        self.addCleanup(shutil.rmtree, tmp, True)
        backend = await self.start_backend(compression=None)
        gw = await self.start_gateway(ch.connect_config(
            h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [backend.port]}]))
        body = PAGE.replace("BACKEND", str(backend.port)).encode()
        reports = []
        page_port = b.serve_page(self, body, reports.append)
        async with b.chromium(f"http://127.0.0.1:{page_port}/", os.path.join(tmp, "profile"),
                              f"--proxy-server=http://127.0.0.1:{gw.port}",
                              # Loopback is bypassed by default; <-loopback> undoes that,
                              # and only the page's own port goes direct.
                              f"--proxy-bypass-list=<-loopback>;127.0.0.1:{page_port}"):
            await h.wait_until(lambda: reports, 60, "the page to report the echo")
        self.assertEqual(reports[0], "/report?echo=hello%20through%20the%20proxy")
        fields = await gw.wait_access_line(
            lambda f: f.get("target") == backend.address and f.get("status") == "200",
            "the tunnel")
        self.assertEqual(fields["proto"], "http/1.1")
        conns = await backend.wait_conns(1)
        self.assertEqual(conns[0].path, "/chat")


if __name__ == "__main__":
    h.main()
