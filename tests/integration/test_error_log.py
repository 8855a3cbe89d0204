"""The error log (stderr): log_level drops the lines below it (debug adds the PROXY
protocol header lines), log_format = "json" makes every line one JSON object, and a
reload changes both from its next line on.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402
from test_proxy_protocol import closed_without_answer, pp_listener, proxied_ws, v1  # noqa: E402


class ErrorLog(h.GatewayCase):
    async def test_warn_level_drops_info_lines(self):
        backend = await self.start_backend()
        gw = await self.start_gateway('log_level = "warn"\n' + h.simple_config(
            h.free_port(), [backend.address], listener=pp_listener()))
        await closed_without_answer(gw.port, b"GET / HTTP/1.1\r\n\r\n")
        await h.wait_until(lambda: "PROXY protocol: connection from" in gw.stderr_text(), 10,
                           "the warn line")
        self.assertNotIn(" info ", gw.stderr_text())
        self.assertNotIn("wsgate listening", gw.stderr_text())

    async def test_json_lines_and_debug(self):
        backend = await self.start_backend()
        gw = await self.start_gateway('log_level = "debug"\nlog_format = "json"\n' +
                                      h.simple_config(h.free_port(), [backend.address],
                                                      listener=pp_listener()))
        async with proxied_ws(gw.port, v1("203.0.113.9", 1234, gw.port)) as ws:
            await ws.send("x")
            await ws.recv()
        await h.wait_until(lambda: "PROXY protocol v1 header" in gw.stderr_text(), 10,
                           "the debug line")
        lines = [json.loads(line) for line in gw.stderr_text().splitlines()]
        for line in lines:
            self.assertEqual(set(line), {"ts", "level", "msg"}, line)
            self.assertRegex(line["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        levels = {line["level"] for line in lines}
        self.assertTrue({"debug", "info"} <= levels, levels)
        debug = [line["msg"] for line in lines if line["level"] == "debug"]
        self.assertTrue(any("client 203.0.113.9:1234" in m for m in debug), debug)

    async def test_reload_changes_the_level(self):
        backend = await self.start_backend()
        admin_port = h.free_port()
        text = ac.with_admin(h.simple_config(h.free_port(), [backend.address]), admin_port)
        gw = await self.start_gateway('log_level = "warn"\n' + text)
        await ac.Admin(admin_port).wait_up()
        rh.write_config(gw, 'log_level = "info"\n' + text)
        # This reload's own line is still at warn: not written; the next one's is.
        status, _, body = await rh.post_reload(admin_port, None)
        self.assertEqual(status, 200, body)
        await rh.sighup(gw, "configuration reloaded")
        self.assertEqual(len(rh.log_lines(gw, "configuration reloaded")), 1,
                         gw.stderr_text())
        self.assertNotIn("wsgate listening", gw.stderr_text())


if __name__ == "__main__":
    h.main()
