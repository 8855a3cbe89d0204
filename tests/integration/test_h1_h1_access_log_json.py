"""HTTP/1.1 client -> HTTP/1.1 backend: the access log as JSON lines
(access_log_format = "json"), and reopening the file on SIGUSR1 after a rotation."""

import asyncio
import json
import os
import signal
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def json_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


class AccessLogJson(h.GatewayCase):
    async def exchange(self, gw, text):
        async with h.ws_connect(gw.port, compression=None) as ws:
            port = ws.local_address[1]
            await ws.send(text)
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)
        return f"127.0.0.1:{port}"

    async def wait_line(self, path, client):
        return await h.wait_until(
            lambda: next((r for r in json_lines(path) if r.get("client") == client), None),
            10, f"JSON access line for {client} in {path}")

    async def test_json_lines_and_reopen_on_sigusr1(self):
        backend = await self.start_backend(compression=None)
        log_dir = self.enterContext(tempfile.TemporaryDirectory(prefix="wsgate-log-"))
        path = os.path.join(log_dir, "access.log")
        text = h.make_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                             [{"name": "echo-route", "path": "/echo", "upstream": "echo"}],
                             access_log=path)
        text = text.replace('access_log = ', 'access_log_format = "json"\naccess_log = ', 1)
        gw = await self.start_gateway(text)

        first = await self.exchange(gw, "x" * 40)
        rec = await self.wait_line(path, first)
        self.assertEqual(rec["route"], "echo-route")
        self.assertEqual(rec["upstream"], backend.address)
        self.assertEqual(rec["status"], 101)
        self.assertEqual((rec["c2u_msgs"], rec["u2c_msgs"]), (1, 1))
        self.assertEqual(rec["c2u_bytes"], 40 + 6 + 8)  # text frame + masked Close 1000
        self.assertEqual(rec["close_code"], 1000)
        self.assertEqual(rec["closed_by"], "client")
        self.assertRegex(rec["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual((rec["host"], rec["path"]), (f"127.0.0.1:{gw.port}", "/echo"))
        self.assertRegex(rec["request_id"], r"^[0-9a-f]{32}$")
        self.assertEqual(backend.conns[-1].headers("x-request-id"), [rec["request_id"]])

        # Rotate: move the file away, SIGUSR1, the next line goes to a new file.
        rotated = path + ".1"
        os.rename(path, rotated)
        gw.send_signal(signal.SIGUSR1)
        await h.wait_until(lambda: os.path.exists(path), 10, "the reopened access log")
        second = await self.exchange(gw, "y")
        await self.wait_line(path, second)
        # (The harness's startup probe also left a status-0 line in the first file.)
        relayed = lambda p: [r["client"] for r in json_lines(p) if r["status"] == 101]  # noqa
        self.assertEqual(relayed(rotated), [first])
        self.assertEqual(relayed(path), [second])
        self.assertIn("access log reopened", gw.stderr_text() + gw.stdout_text())

        # A rejected handshake: no relay, so close fields are null.
        conn = await h.RawConn.open("127.0.0.1", gw.port)
        async with conn:
            client = f"127.0.0.1:{conn.local_port}"
            await conn.send(h.upgrade_request("/nowhere", "127.0.0.1"))
            await conn.read_until_eof(10)
        rec = await self.wait_line(path, client)
        self.assertEqual(rec["status"], 404)
        self.assertIsNone(rec["close_code"])
        self.assertIn("no route", rec["reason"])


if __name__ == "__main__":
    h.main()
