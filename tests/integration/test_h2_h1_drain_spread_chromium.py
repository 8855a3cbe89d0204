"""HTTP/2 client (headless Chromium, RFC 8441) -> HTTP/1.1 backend: SIGTERM with
drain_spread. Every HTTP/2 connection gets GOAWAY at once (RFC 9113 6.8: its open
streams go on), while the WebSocket streams' Close 1001 frames are spread over the
window. python3-h2 stops reading a connection once it has seen a GOAWAY, so the streams
are held by a real browser; a python3-h2 connection without streams shows the GOAWAY's
timing. The page reports each close (code, and when it arrives at the report server).
Skipped (saying why) when /usr/bin/chromium is not installed.
"""

import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser as b  # noqa: E402
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

STREAMS = 20
SPREAD = 2.0
DRAIN_TIMEOUT = 10.0

# Opens STREAMS WebSockets over the HTTP/2 connection the warm-up fetch made, reports
# when all echoed once, then reports each close with its code.
PAGE = """<html><head><title>drain</title></head><body><script>
const N = NSTREAMS;
fetch('https://localhost:GWPORT/warmup', {mode: 'no-cors', credentials: 'include'})
  .catch(e => {}).finally(() => {
    let ready = 0;
    for (let i = 0; i < N; i++) {
      const ws = new WebSocket('wss://localhost:GWPORT/echo');
      ws.onopen = () => ws.send('m' + i);
      ws.onmessage = () => { if (++ready === N) fetch('/report?ready=' + N); };
      ws.onclose = (e) => fetch('/report?close=' + e.code + '&i=' + i);
      ws.onerror = () => fetch('/report?error=' + i);
    }
  });
</script></body></html>"""


@b.needs_chromium
class H2DrainSpread(h.GatewayCase):
    async def test_h2_h1_sigterm_goaway_at_once_closes_spread(self):
        tmp = tempfile.mkdtemp(prefix="wsgate-h2-drain-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert = c.make_certificate(tmp)
        backend = await self.start_backend(compression=None)
        port = h.free_port()
        config = (f'drain_spread = "{SPREAD:g}s"\n'
                  + c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                             [{"path": "/echo", "upstream": "echo"}], tls=cert,
                             drain_timeout=f"{DRAIN_TIMEOUT:g}s"))
        gw = await self.start_gateway(config)
        body = PAGE.replace("GWPORT", str(port)).replace("NSTREAMS", str(STREAMS)).encode()

        reports: list = []  # (monotonic arrival time, query dict)

        def on_report(path):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            reports.append((time.monotonic(), {k: v[0] for k, v in query.items()}))

        page_port = b.serve_page(self, body, on_report, cert=cert)

        def of_kind(kind):
            return [(t, q) for t, q in list(reports) if kind in q]

        # The browser runs until every close is reported (or the deadline).
        async with b.chromium(f"https://localhost:{page_port}/", os.path.join(tmp, "profile"),
                              "--ignore-certificate-errors"):
            await h.wait_until(lambda: of_kind("ready") or of_kind("error"), 60,
                               "the page to open its WebSockets")
            self.assertEqual(of_kind("error"), [], "a WebSocket failed to open")
            await backend.wait_conns(STREAMS)
            # A second HTTP/2 connection, without streams, to see when its GOAWAY comes.
            probe = await c.H2Conn.open("127.0.0.1", port, tls=True)
            self.addAsyncCleanup(probe.close)
            await probe.wait_settings()

            signalled = time.monotonic()
            gw.send_signal(signal.SIGTERM)
            await probe.wait_for(lambda: probe.terminated is not None, 5, "GOAWAY on the probe")
            goaway_after = time.monotonic() - signalled
            self.assertEqual(int(probe.terminated.error_code), 0)  # NO_ERROR
            closes_at_goaway = len(of_kind("close"))

            await h.wait_until(lambda: len(of_kind("close")) >= STREAMS, DRAIN_TIMEOUT + 5,
                               "every WebSocket to report its close")
        rc = await gw.wait_exit(DRAIN_TIMEOUT + 5)
        self.assertEqual(rc, 0, gw.describe())

        closes = of_kind("close")
        self.assertEqual(sorted(q["close"] for _, q in closes), ["1001"] * STREAMS,
                         "every stream gets Close 1001")
        offsets = sorted(t - signalled for t, _ in closes)
        first_tenth = sum(1 for t in offsets if t < 0.1 * SPREAD)
        print(f"\nHTTP/2, {STREAMS} streams, drain_spread {SPREAD:g}s: GOAWAY after "
              f"{goaway_after:.3f}s with {closes_at_goaway} closes reported; closes at "
              f"min {offsets[0]:.3f}s median {statistics.median(offsets):.3f}s "
              f"max {offsets[-1]:.3f}s; {first_tenth} in the first 10% of the window",
              file=sys.stderr)
        self.assertLess(goaway_after, 0.25 * SPREAD, "GOAWAY is not sent at the start")
        self.assertLess(closes_at_goaway, STREAMS // 2, "closes not spread after the GOAWAY")
        self.assertLess(first_tenth, 0.3 * STREAMS, "closes bunched at the start")
        self.assertGreater(offsets[-1], 0.6 * SPREAD, "the last close came too early")
        self.assertLess(offsets[-1], DRAIN_TIMEOUT, "closes after drain_timeout")

        lines = [h.parse_logfmt(line) for line in gw.access_log_lines()]
        ws_lines = [f for f in lines if f.get("route") not in (None, "-")]
        self.assertEqual(len(ws_lines), STREAMS, ws_lines)
        self.assertEqual({f["proto"] for f in ws_lines}, {"h2"}, "Chromium did not use RFC 8441")
        for rec in backend.conns:
            await backend.wait_done(rec)
        self.assertEqual(sorted({rec.close_code for rec in backend.conns}), [1001])


if __name__ == "__main__":
    h.main()
