"""Socket.IO through wsgate (issue 15): the socket.io server and socket.io-client npm
packages (tests/integration/socketio/, installed by scripts/install-deps.sh test from
its lockfile), two servers behind one upstream with the affinity cookie.

Socket.IO starts every session with HTTP long-polling (GET and POST on
/socket.io/?EIO=4&transport=polling&sid=...) and then upgrades to a WebSocket; the
session exists on the server that answered the first request only. With the cookie,
every client connects, exchanges messages over polling and then WebSocket, and stays on
one server, and both servers get clients. Without it (the control), round robin sends a
session's requests to the server that does not know it and the clients fail.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402

SIO = os.path.join(h.HERE, "socketio")
CLIENTS = 8


class SocketIo(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        if not os.path.isdir(os.path.join(SIO, "node_modules", "socket.io-client")):
            if os.environ.get("WSGATE_BIN"):
                self.fail("socket.io not installed: scripts/install-deps.sh test")
            self.skipTest("socket.io not installed: scripts/install-deps.sh test")
        self.ports = [await self.start_server(name) for name in ("sa", "sb")]

    async def start_server(self, name):
        tmp = tempfile.TemporaryDirectory(prefix="wsgate-sio-")
        out_path = os.path.join(tmp.name, "out.log")
        out = open(out_path, "wb")
        proc = subprocess.Popen([hh.NODE, os.path.join(SIO, "server.js"), name],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

        async def stop():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.to_thread(proc.wait), 10)
                except asyncio.TimeoutError:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            out.close()
            tmp.cleanup()
        self.addAsyncCleanup(stop)

        def port():
            if proc.poll() is not None:
                raise AssertionError(f"socket.io server exited: {open(out_path).read()}")
            with open(out_path) as f:
                for line in f:
                    if line.startswith("listening "):
                        return int(line.split()[1])
            return 0
        return await h.wait_until(port, 20.0, f"socket.io server {name}")

    async def gateway(self, affinity: bool):
        port = h.free_port()
        text = (f'workers = 2\naccess_log = "-"\n\n[[listener]]\naddress = "127.0.0.1:{port}"\n\n'
                f'[[upstream]]\nname = "sio"\n'
                f'servers = ["127.0.0.1:{self.ports[0]}", "127.0.0.1:{self.ports[1]}"]\n'
                f'balancer = "round_robin"\n'
                + ('affinity_cookie = "wsg"\n' if affinity else "")
                + '\n[[route]]\npath = "/"\nupstream = "sio"\n')
        return await self.start_gateway(text)

    async def run_clients(self, gw):
        def run():
            return subprocess.run([hh.NODE, os.path.join(SIO, "client.js"),
                                   f"http://127.0.0.1:{gw.port}", str(CLIENTS)],
                                  capture_output=True, timeout=60)
        p = await asyncio.to_thread(run)
        results = [json.loads(line) for line in p.stdout.decode().splitlines() if line]
        return p.returncode, results, p.stderr.decode()

    async def test_clients_stay_on_one_server_through_polling_and_upgrade(self):
        gw = await self.gateway(affinity=True)
        rc, results, err = await self.run_clients(gw)
        self.assertEqual(rc, 0, (results, err))
        self.assertEqual(len(results), CLIENTS)
        for r in results:
            self.assertIsNone(r["error"], r)
            self.assertTrue(r["upgraded"], r)
            self.assertEqual(len(set(r["servers"])), 1, r)  # one server for the session
            self.assertEqual(r["transports"][-1], "websocket", r)  # ended on the WebSocket
        self.assertEqual({r["servers"][0] for r in results}, {"sa", "sb"})
        # Each session began with forwarded long-polling requests (its handshake GET, then
        # GET/POST with its sid) and ended in one relayed WebSocket.
        lines = [h.parse_logfmt(ln) for ln in gw.access_log_lines()]
        polls = [ln for ln in lines if "transport=polling" in ln.get("path", "")]
        self.assertGreaterEqual(len([ln for ln in polls if "sid=" not in ln["path"]]), CLIENTS)
        self.assertTrue(all(ln["status"] == "200" for ln in polls), polls)
        self.assertTrue(any(ln["method"] == "POST" for ln in polls), polls)
        await gw.wait_access_line(lambda f: f.get("status") == "101", "a relayed WebSocket")

    async def test_without_the_cookie_sessions_break(self):
        gw = await self.gateway(affinity=False)
        rc, results, _ = await self.run_clients(gw)
        self.assertNotEqual(rc, 0)
        self.assertTrue(any(r["error"] for r in results), results)


if __name__ == "__main__":
    h.main()
