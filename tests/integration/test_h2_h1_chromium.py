"""A real browser: headless Chromium loads a page (from a tiny local https server) that
opens wss:// to wsgate and echoes a message; the access log must show the WebSocket
arrived over HTTP/2 (RFC 8441). Chromium only runs WebSockets over an HTTP/2 connection
it already has to that origin, so the page first fetches from wsgate (credentials
included, so the connection can be shared), then opens the WebSocket.
Skipped (saying why) when /usr/bin/chromium is not installed.
"""

import asyncio
import http.server
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

CHROMIUM = "/usr/bin/chromium"

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


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK), "chromium is not installed (apt-get install chromium)")
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

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/report"):
                    reports.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        profile = os.path.join(tmp, "profile")
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--ignore-certificate-errors",
               f"https://localhost:{server.server_address[1]}/"]
        # The browser runs until the page reports the echo (or the deadline); then it is
        # stopped by its PID.
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)
        try:
            await h.wait_until(lambda: reports, 60, "the page to report the echo")
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
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
