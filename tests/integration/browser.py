"""Headless Chromium for the integration tests: a local page server that the browser
loads (plain or HTTPS) and that collects the page's /report requests, and the browser
itself, started with a throwaway profile and stopped by its PID.

Same rules as harness.py: 127.0.0.1 only, every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import ssl
import subprocess
import threading
import unittest
from typing import Callable, Optional

CHROMIUM = "/usr/bin/chromium"

# Decorator for test classes that need the browser: skipped, saying why, without it.
needs_chromium = unittest.skipUnless(os.access(CHROMIUM, os.X_OK),
                                     "chromium is not installed (apt-get install chromium)")


def serve_page(tc: unittest.TestCase, body: bytes, on_report: Callable[[str], None],
               cert: Optional[tuple[str, str]] = None) -> int:
    """Serves `body` for every GET (HTTPS with `cert` = (cert file, key file)); a GET of
    /report... is also passed to `on_report(path)`. Stopped by the test's cleanups.
    Returns the port."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/report"):
                on_report(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    if cert is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tc.addCleanup(server.server_close)
    tc.addCleanup(server.shutdown)
    return server.server_address[1]


@contextlib.asynccontextmanager
async def chromium(url: str, profile_dir: str, *args: str):
    """Runs headless Chromium on `url` (with extra command-line `args`) for the body of
    the `async with`, then stops it by its PID (terminate, kill after 20 s)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile_dir}", *args, url]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
