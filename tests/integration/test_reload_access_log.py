"""A reload that changes access_log and access_log_format opens the new target: lines of
connections that end afterwards go there, in the new format (including a connection
that was established before the reload); an access_log that cannot be opened rejects
the reload and the old target stays in use."""

import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402


class ReloadAccessLog(h.GatewayCase):
    async def echo(self, ws, text):
        await ws.send(text)
        self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)

    async def test_access_log_target_and_format_change(self):
        backend = await self.start_backend()
        port = h.free_port()
        gw = await self.start_gateway(h.simple_config(port, [backend.address]))
        async with h.ws_connect(port, "/echo") as ws:
            await self.echo(ws, "first")
        await gw.wait_access_line(lambda f: f.get("status") == "101", "the first connection")

        path = os.path.join(gw.dir, "access.json")
        # A folder that does not exist: rejected, stdout stays the target.
        rh.write_config(gw, h.simple_config(port, [backend.address],
                                            access_log=os.path.join(gw.dir, "no", "x.log")))
        line = await rh.sighup(gw, rh.NOT_RELOADED)
        self.assertIn("cannot open access_log", line)

        json_config = h.simple_config(port, [backend.address], access_log=path)
        rh.write_config(gw, json_config.replace("access_log = ",
                                                'access_log_format = "json"\naccess_log = ', 1))
        async with h.ws_connect(port, "/echo") as before_reload:
            await self.echo(before_reload, "established before")
            await rh.sighup(gw, rh.RELOADED)
            async with h.ws_connect(port, "/echo") as after_reload:
                await self.echo(after_reload, "after")
            await self.echo(before_reload, "still here")

        def json_lines():
            if not os.path.exists(path):
                return []
            with open(path, encoding="utf-8") as f:
                return [json.loads(ln) for ln in f if ln.strip()]

        await h.wait_until(lambda: len(json_lines()) >= 2, 10, "two JSON access lines")
        self.assertEqual([r["status"] for r in json_lines()], [101, 101])
        self.assertEqual(len(gw.access_log_lines()), 1, "stdout got only the first line")


if __name__ == "__main__":
    h.main()
