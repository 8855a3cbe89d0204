"""The admin token: with `token` set, /metrics and /connections need
"Authorization: Bearer <token>" (401 with WWW-Authenticate otherwise); /healthz, /ready
and the dashboard page (which holds no data) do not. Without a token, all answer."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

TOKEN = "Zm9vYmFy-s3cret_token"


class AdminToken(h.GatewayCase):
    async def start(self, token):
        backend = await self.start_backend()
        admin_port = h.free_port()
        text = h.simple_config(h.free_port(), [backend.address])
        await self.start_gateway(ac.with_admin(text, admin_port, token))
        admin = ac.Admin(admin_port, token)
        await admin.wait_up()
        return admin

    async def test_token_required_when_configured(self):
        admin = await self.start(TOKEN)
        for path in ("/metrics", "/connections"):
            for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
                status, headers, _ = await admin.get(path, token=token)
                self.assertEqual(status, 401, f"{path} with token {token!r}")
                self.assertTrue(headers.get("www-authenticate", "").startswith("Bearer"))
            status, _, body = await admin.get(path, token=TOKEN)
            self.assertEqual(status, 200, f"{path}: {body[:200]!r}")
        status, _, body = await admin.get("/metrics", token=TOKEN)
        self.assertIn(b"wsgate_workers 2", body)
        for path in ("/healthz", "/ready", "/"):
            status, _, _ = await admin.get(path, token=None)
            self.assertEqual(status, 200, path)

    async def test_no_token_configured_means_open(self):
        admin = await self.start(None)
        for path in ("/metrics", "/connections", "/healthz", "/ready", "/"):
            status, _, _ = await admin.get(path, token=None)
            self.assertEqual(status, 200, path)


if __name__ == "__main__":
    h.main()
