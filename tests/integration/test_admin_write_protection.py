"""Admin writes (POST /reload and the close endpoints) are safe from browsers (issue 14
item 13), checked with curl:

- no token configured (the default): a write needs a request from this host, i.e. a
  Host header that is the admin address or localhost (DNS rebinding sends the attacker's
  name) and the custom header X-Wsgate-Admin (a cross-site page cannot send it without
  a CORS preflight, which the admin listener refuses); reads stay open;
- separate read_token and write_token: the read token reads but cannot write;
- token_file: the token is read from a file (one line).
"""

import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

READ, WRITE = "r34d-token", "wr1te.Token~"
CLOSE = "/upstreams/echo/servers/127.0.0.1:1/close"


class AdminWriteProtection(h.GatewayCase):
    async def start(self, admin_extra=""):
        backend = await self.start_backend()
        self.admin_port = h.free_port()
        text = ac.with_admin(h.simple_config(h.free_port(), [backend.address]),
                             self.admin_port) + admin_extra
        self.gw = await self.start_gateway(text)
        await ac.Admin(self.admin_port).wait_up()

    async def curl(self, method, path, *headers):
        """(status, body) of `curl -X method` with extra `-H` headers."""
        args = ["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}",
                "-X", method]
        for hd in headers:
            args += ["-H", hd]
        args.append(f"http://127.0.0.1:{self.admin_port}{path}")
        r = await h.run_tool_async(args, timeout=20)
        body, _, status = r.stdout.rpartition("\n")
        return int(status), body

    async def test_admin_writes_without_token_need_local_host_and_custom_header(self):
        await self.start()
        # A cross-site form post, or fetch() without a preflight: refused, nothing done.
        status, body = await self.curl("POST", "/reload", "Origin: http://evil.example",
                                       "Content-Type: application/x-www-form-urlencoded")
        self.assertEqual(status, 403, body)
        self.assertIn("X-Wsgate-Admin", body)
        status, body = await self.curl("POST", CLOSE)
        self.assertEqual(status, 403, body)
        # DNS rebinding: the custom header, but the attacker's name in Host.
        status, body = await self.curl("POST", "/reload", "X-Wsgate-Admin: 1",
                                       f"Host: rebind.evil.example:{self.admin_port}")
        self.assertEqual(status, 403, body)
        self.assertIn("Host", body)
        status, body = await self.curl("POST", "/reload", "X-Wsgate-Admin: 1",
                                       "Host: 127.0.0.1:1")  # another port
        self.assertEqual(status, 403, body)
        self.assertEqual(len([ln for ln in self.gw.stderr_text().splitlines()
                              if "configuration reloaded" in ln]), 0)
        # From this host, with the header: done.
        status, body = await self.curl("POST", "/reload", "X-Wsgate-Admin: 1")
        self.assertEqual(status, 200, body)
        status, body = await self.curl("POST", "/reload", "X-Wsgate-Admin: 1",
                                       f"Host: localhost:{self.admin_port}")
        self.assertEqual(status, 200, body)
        status, body = await self.curl("POST", CLOSE, "X-Wsgate-Admin: 1")
        self.assertEqual(status, 404, body)  # allowed; there is no such server
        # A preflight (what a browser sends before a cross-site custom header) fails.
        status, _ = await self.curl("OPTIONS", "/reload", "Origin: http://evil.example",
                                    "Access-Control-Request-Method: POST",
                                    "Access-Control-Request-Headers: x-wsgate-admin")
        self.assertNotEqual(status // 100, 2)
        # Reads stay open.
        status, body = await self.curl("GET", "/metrics")
        self.assertEqual(status, 200, body[:200])

    async def test_admin_read_token_reads_write_token_writes(self):
        await self.start(f'read_token = "{READ}"\nwrite_token = "{WRITE}"\n')
        for token, want in ((None, 401), ("nope", 401), (READ, 200), (WRITE, 200)):
            hd = [f"Authorization: Bearer {token}"] if token else []
            status, body = await self.curl("GET", "/metrics", *hd)
            self.assertEqual(status, want, f"GET /metrics with {token}: {body[:200]}")
        for token, want in ((None, 401), (READ, 403), (WRITE + "x", 401), (WRITE[:-1], 401),
                            (WRITE, 200)):
            hd = [f"Authorization: Bearer {token}"] if token else []
            status, body = await self.curl("POST", "/reload", *hd)
            self.assertEqual(status, want, f"POST /reload with {token}: {body[:200]}")
        # With a write token, neither the custom header nor Host opens writes.
        status, body = await self.curl("POST", "/reload", "X-Wsgate-Admin: 1")
        self.assertEqual(status, 401, body)

    async def test_admin_token_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
            f.write(WRITE + "\n")
        self.addCleanup(os.unlink, f.name)
        await self.start(f"token_file = {h.toml_value(f.name)}\n")
        status, _ = await self.curl("GET", "/metrics")
        self.assertEqual(status, 401)
        status, body = await self.curl("GET", "/metrics", f"Authorization: Bearer {WRITE}")
        self.assertEqual(status, 200, body[:200])
        status, body = await self.curl("POST", "/reload", f"Authorization: Bearer {WRITE}")
        self.assertEqual(status, 200, body)

    def test_admin_bad_token_settings_name_file_line_column(self):
        h.require_wsgate(self)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "gw.toml")
            cases = (('token = "a"\ntoken_file = "t"\n', "admin.token_file",
                      "at most one of"),
                     ('token_file = "missing.token"\n', "admin.token_file", "cannot read"),
                     ('token = "a"\nwrite_token = "b"\n', "admin.write_token",
                      "at most one of"))
            for extra, key, words in cases:
                with open(path, "w") as f:
                    f.write(ac.with_admin(h.simple_config(h.free_port(), ["127.0.0.1:1"]),
                                          h.free_port()) + extra)
                r = subprocess.run([h.WSGATE_BIN, "--check-config", path],
                                   capture_output=True, timeout=20)
                err = r.stderr.decode()
                self.assertNotEqual(r.returncode, 0, err)
                with open(path) as f:
                    line = len(f.read().splitlines())  # the key named is the last line
                self.assertIn(f"{path}:{line}:", err)
                self.assertIn(key, err)
                self.assertIn(words, err)


if __name__ == "__main__":
    h.main()
