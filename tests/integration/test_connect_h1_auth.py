"""CONNECT tunnels with proxy users: Proxy-Authorization Basic against [[connect.user]].

Without credentials or with wrong ones: 407 with Proxy-Authenticate; with them: 200 and
the access log names the user; the credentials never appear in any log.
"""

import base64
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402

BODY = b"authenticated\n"
PASSWORD = "correct horse:battery"


class ConnectH1Auth(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.web = ch.HttpServer({"index.html": BODY})
        await self.web.__aenter__()
        self.addAsyncCleanup(self.web.__aexit__, None, None, None)
        self.gw = await self.start_gateway(ch.connect_config(
            h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [self.web.port]}],
            users=[("alice", ch.hash_password(PASSWORD)), ("bob", ch.hash_password("other"))]))
        self.url = f"http://127.0.0.1:{self.web.port}/index.html"
        self.proxy = f"http://127.0.0.1:{self.gw.port}"

    async def test_h1_connect_auth_missing_gets_407(self):
        rc, _, err = await ch.curl("-x", self.proxy, "--proxytunnel", self.url)
        self.assertNotEqual(rc, 0)
        self.assertIn(b"407", err)
        sock, head = await ch.raw_connect(self.gw.port, f"127.0.0.1:{self.web.port}")
        sock.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 407 Proxy Authentication Required"), head)
        self.assertIn(b'Proxy-Authenticate: Basic realm="wsgate"', head)

    async def test_h1_connect_auth_good_credentials_get_200(self):
        rc, out, err = await ch.curl("-x", self.proxy, "--proxytunnel", "--proxy-user",
                                     f"alice:{PASSWORD}", self.url)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, BODY)
        # Twice more: the verified credentials are cached per worker; same answer.
        for _ in range(2):
            rc, out, _ = await ch.curl("-x", self.proxy, "--proxytunnel", "--proxy-user",
                                       f"alice:{PASSWORD}", self.url)
            self.assertEqual((rc, out), (0, BODY))
        line = await self.gw.wait_access_line(lambda f: f.get("status") == "200", "the tunnel")
        self.assertEqual(line["user"], "alice")

    async def test_h1_connect_auth_wrong_credentials_get_407(self):
        for user in (f"alice:{PASSWORD}x", f"bob:{PASSWORD}", f"carol:{PASSWORD}"):
            rc, _, err = await ch.curl("-x", self.proxy, "--proxytunnel", "--proxy-user", user,
                                       self.url)
            self.assertNotEqual(rc, 0, user)
            self.assertIn(b"407", err)
        resp = await h.http_exchange(
            "127.0.0.1", self.gw.port,
            f"CONNECT 127.0.0.1:{self.web.port} HTTP/1.1\r\nHost: x\r\n"
            "Proxy-Authorization: Bearer abc\r\n\r\n".encode())
        self.assertEqual(resp.status, 407)
        self.assertIn(b"only the Basic scheme", resp.body)

    async def test_h1_connect_auth_credentials_never_logged(self):
        await ch.curl("-x", self.proxy, "--proxytunnel", "--proxy-user", f"alice:{PASSWORD}",
                      self.url)
        await ch.curl("-x", self.proxy, "--proxytunnel", "--proxy-user", "alice:wrongpw", self.url)
        await self.gw.wait_access_line(lambda f: f.get("status") == "407", "the refusal")
        logs = self.gw.stdout_text() + self.gw.stderr_text()
        token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        for secret in (PASSWORD, "wrongpw", token, "Proxy-Authorization"):
            self.assertNotIn(secret, logs)


if __name__ == "__main__":
    h.main()
