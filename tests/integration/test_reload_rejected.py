"""A reload that cannot be applied is rejected whole: a TOML syntax error and a route
naming an unknown upstream (by SIGHUP and by POST /reload), a change of `workers` (which
cannot change in a running process) and a new listener whose port is taken. Each time
the error is logged (file:line:column for config errors), POST /reload answers 400
with it, the old routes are still served and an established WebSocket is unaffected.
A good config afterwards is taken."""

import asyncio
import os
import re
import socket
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402
import websockets  # noqa: E402

TOKEN = "reload-token"
POSITION = re.compile(r"wsgate\.toml:(\d+):(\d+): ")


class ReloadRejected(h.GatewayCase):
    async def echo(self, ws, text):
        await ws.send(text)
        self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)

    async def still_serving(self, port, established, what):
        await self.echo(established, f"established, after {what}")
        async with h.ws_connect(port, "/echo") as fresh:
            await self.echo(fresh, f"new, after {what}")

    async def test_broken_configs_are_rejected_and_everything_keeps_running(self):
        backend = await self.start_backend()
        port, admin_port = h.free_port(), h.free_port()

        def config(routes, upstreams=None, **kw):
            text = h.make_config(f"127.0.0.1:{port}", upstreams or {"echo": [backend.address]},
                                 routes, **kw)
            return ac.with_admin(text, admin_port, TOKEN)

        echo_route = {"host": "*", "path": "/echo", "upstream": "echo"}
        good = config([echo_route])
        gw = await self.start_gateway(good)
        admin = ac.Admin(admin_port, TOKEN)
        await admin.wait_up()

        async with h.ws_connect(port, "/echo") as ws:
            await self.echo(ws, "before")

            # 1. TOML syntax error, by SIGHUP: the log names file:line:column.
            rh.write_config(gw, good + '\n[[route]]\npath = "/broken\n')
            line = await rh.sighup(gw, rh.NOT_RELOADED)
            m = POSITION.search(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(int(m.group(1)), good.count("\n") + 3, line)
            await self.still_serving(port, ws, "a syntax error")

            # 2. A route naming an upstream that does not exist, by POST /reload: 400 with
            # the position of the route's upstream key.
            bad = config([echo_route, {"host": "*", "path": "/new", "upstream": "nope"}])
            rh.write_config(gw, bad)
            status, _, body = await rh.post_reload(admin_port, TOKEN)
            self.assertEqual(status, 400, body)
            self.assertTrue(body.startswith("not reloaded: "), body)
            self.assertIn("nope", body)
            m = POSITION.search(body)
            self.assertIsNotNone(m, body)
            self.assertEqual(bad.splitlines()[int(m.group(1)) - 1], 'upstream = "nope"')
            self.assertTrue(any("nope" in ln for ln in rh.log_lines(gw, rh.NOT_RELOADED)))
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
                async with h.ws_connect(port, "/new"):
                    pass
            self.assertEqual(refused.exception.status_code, 404)
            await self.still_serving(port, ws, "an unknown upstream")

            # 3. The same by SIGHUP.
            line = await rh.sighup(gw, rh.NOT_RELOADED)
            self.assertIn("nope", line)
            self.assertIsNotNone(POSITION.search(line), line)

            # 4. workers cannot change in place: rejected, with the reason.
            rh.write_config(gw, config([echo_route], workers=3))
            status, _, body = await rh.post_reload(admin_port, TOKEN)
            self.assertEqual(status, 400, body)
            self.assertIn("workers cannot change while running (2 -> 3)", body)
            await self.still_serving(port, ws, "a workers change")

            # 5. A new listener on a port someone else holds: nothing of it is applied.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                taken_port = taken.getsockname()[1]
                rh.write_config(gw, config(
                    [echo_route], extra_listeners=[f"127.0.0.1:{taken_port}"]))
                status, _, body = await rh.post_reload(admin_port, TOKEN)
            self.assertEqual(status, 400, body)
            self.assertIn(f"127.0.0.1:{taken_port}", body)
            await self.still_serving(port, ws, "a taken port")

            metrics = await admin.metrics()
            self.assertEqual(metrics.value("wsgate_config_reloads_total", result="failure"), 5)
            self.assertEqual(metrics.value("wsgate_config_reloads_total", result="success"), 0)
            self.assertEqual(
                metrics.value("wsgate_config_last_reload_success_timestamp_seconds"), 0)

            # 6. Fixed: the next reload is taken, the connection still runs.
            rh.write_config(gw, config([echo_route, {"host": "*", "path": "/new",
                                                     "upstream": "echo"}]))
            await rh.sighup(gw, rh.RELOADED)
            async with h.ws_connect(port, "/new") as fresh:
                await self.echo(fresh, "new route")
            await self.echo(ws, "after the good reload")
            self.assertEqual(backend.conns[0].messages[0], "before")
            self.assertEqual(backend.conns[0].messages[-1], "after the good reload")
        self.assertIsNone(gw.proc.poll(), "wsgate exited")


if __name__ == "__main__":
    h.main()
