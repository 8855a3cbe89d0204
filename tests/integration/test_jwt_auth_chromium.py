"""A browser's WebSocket authenticated by a JWT (issue 17): headless Chromium loads a page
through wsgate (an unauthenticated route), and the page opens WebSockets to a route with
[route.auth] type = "jwt", the token (made with openssl) in the two places a page can put
it: a cookie set by the page (cookieStore.set), and an entry of the subprotocol list (the
backend picks the real protocol). A socket without a token is refused before the
backend. Over HTTP/1.1 and over HTTP/2 (TLS, ALPN h2: the sockets are RFC 8441 streams).
Skipped (saying why) without /usr/bin/chromium.
"""

import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser as b  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402
from test_jwt_auth import ISSUER, Keys  # noqa: E402

PAGE = """<html><head><title>jwt</title></head><body><script>
const base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo';
const report = (what) => fetch('/report?' + what);
function open(name, protocols) {
  return new Promise((resolve) => {
    const ws = protocols ? new WebSocket(base, protocols) : new WebSocket(base);
    ws.onopen = () => ws.send(name);
    ws.onmessage = (e) => { ws.close(1000); resolve(name + '=' + e.data + '+' + ws.protocol); };
    ws.onerror = () => resolve(name + '=error');
  });
}
(async () => {
  const results = [await open('none')];
  results.push(await open('subprotocol', ['chat', 'bearer.TOKEN']));
  // Not document.cookie: Chromium stores what it sets out of process, with no order
  // against the next request, so a socket opened at once may go without the cookie.
  // cookieStore.set settles once the cookie is stored.
  await cookieStore.set({name: 'jwt', value: 'TOKEN', path: '/', sameSite: 'strict'});
  results.push(await open('cookie'));
  report(results.join('&'));
})();
</script></body></html>"""


@b.needs_chromium
class JwtFromBrowser(h.GatewayCase):
    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix="wsgate-jwt-chromium-")
        cls.keys = Keys(cls._dir.name)

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()

    async def run_page(self, tls: bool):
        tmp = tempfile.mkdtemp(prefix="wsgate-jwt-page-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert = c.make_certificate(tmp) if tls else None
        echo = await self.start_backend(compression=None, subprotocols=["chat"])
        reports = []
        token = self.keys.token("ES256", sub="browser-user")
        page = PAGE.replace("TOKEN", token).encode()
        page_port = b.serve_page(self, page, reports.append)
        port = h.free_port()
        text = c.config(
            f"127.0.0.1:{port}", {"echo": [echo.address], "pages": [f"127.0.0.1:{page_port}"]},
            [{"name": "pages", "path": "/", "upstream": "pages"},
             {"name": "ws", "path": "/echo", "upstream": "echo"}], tls=cert, workers=1)
        text += (f'[route.auth]\ntype = "jwt"\npublic_key_files = ["{self.keys.ec_pub}"]\n'
                 f'issuer = "{ISSUER}"\naudiences = ["chat"]\nstrip_token = true\n'
                 'token_from = ["subprotocol:bearer.", "cookie:jwt"]\n'
                 'claim_headers = { sub = "X-User" }\n')
        self.gw = await self.start_gateway(text)
        url = f"https://localhost:{port}/" if tls else f"http://127.0.0.1:{port}/"
        async with b.chromium(url, os.path.join(tmp, "profile"), "--ignore-certificate-errors"):
            await h.wait_until(lambda: reports, 60, "the page to report")
        # On a failure, what the gateway logged about each socket says which side failed.
        sockets = [h.parse_logfmt(ln) for ln in self.gw.access_log_lines()]
        self.assertEqual(reports[0], "/report?none=error&subprotocol=subprotocol+chat"
                                     "&cookie=cookie+",
                         [f for f in sockets if f.get("route") == "ws"])
        recs = echo.conns
        self.assertEqual(len(recs), 2, "the socket without a token reached the backend")
        self.assertEqual([r.header("X-User") for r in recs], ["browser-user"] * 2)
        self.assertEqual(recs[0].header("Sec-WebSocket-Protocol"), "chat")
        self.assertNotIn("jwt=", recs[1].header("Cookie") or "", "token not stripped")
        refused = await self.gw.wait_access_line(
            lambda f: f.get("route") == "ws" and f.get("status") == "401", "the refusal")
        self.assertEqual(refused["reason"], "no token: route ws needs a JWT")
        return recs

    async def test_cookie_and_subprotocol_tokens_over_http1(self):
        await self.run_page(tls=False)

    async def test_cookie_and_subprotocol_tokens_over_http2(self):
        await self.run_page(tls=True)
        line = await self.gw.wait_access_line(
            lambda f: f.get("route") == "ws" and f.get("status") == "200", "an RFC 8441 socket")
        self.assertEqual(line["proto"], "h2")


if __name__ == "__main__":
    h.main()
