"""A real browser: headless Chromium loads a page (from a tiny local https server) that
opens wss:// to wsgate and echoes a message; the access log must show the WebSocket
arrived over HTTP/2 (RFC 8441). Chromium only runs WebSockets over an HTTP/2 connection
it already has to that origin, so the page first fetches from wsgate (credentials
included, so the connection can be shared), then opens the WebSocket.
Skipped (saying why) when /usr/bin/chromium is not installed.
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

PAGE = """<html><head><title>start</title></head><body><pre id=log></pre><script>
function log(s) { document.getElementById('log').textContent += s + '\\n'; }
fetch('https://localhost:GWPORT/warmup', {mode: 'no-cors', credentials: 'include'})
  .catch(e => log('fetch failed')).finally(() => {
    const ws = new WebSocket('wss://localhost:GWPORT/echo');
    ws.onopen = () => { log('open'); ws.send('hello from chromium'); };
    ws.onmessage = (e) => { ws.close(1000); fetch('/report?echo=' + encodeURIComponent(e.data)); };
    ws.onerror = () => fetch('/report?error=1');
  });
</script></body></html>"""


@b.needs_chromium
class Chromium(h.GatewayCase):
    async def test_chromium_uses_rfc8441(self):
        tmp = tempfile.mkdtemp(prefix="wsgate-chromium-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert = c.make_certificate(tmp)
        backend = await self.start_backend(compression=None)
        port = h.free_port()
        gw = await self.start_gateway(c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                                               [{"path": "/echo", "upstream": "echo"}], tls=cert))
        body = PAGE.replace("GWPORT", str(port)).encode()

        reports = []
        page_port = b.serve_page(self, body, reports.append, cert=cert)
        # The browser runs until the page reports the echo (or the deadline).
        async with b.chromium(f"https://localhost:{page_port}/", os.path.join(tmp, "profile"),
                              "--ignore-certificate-errors"):
            await h.wait_until(lambda: reports, 60, "the page to report the echo")
        self.assertEqual(reports[0], "/report?echo=hello%20from%20chromium")
        # One message each way, then Close 1000 from the browser (sent from onmessage).
        fields = await gw.wait_access_line(lambda f: f.get("route") not in (None, "-"),
                                           "the WebSocket")
        self.assertEqual(fields["proto"], "h2", f"Chromium did not use RFC 8441: {fields}")
        self.assertEqual(fields["status"], "200")
        self.assertEqual((fields["c2u_msgs"], fields["u2c_msgs"]), ("1", "1"), fields)
        self.assertEqual((fields["close_code"], fields["closed_by"]), ("1000", "client"), fields)


if __name__ == "__main__":
    h.main()
