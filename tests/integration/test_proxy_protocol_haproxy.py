"""HAProxy (Debian's, TCP mode) as the L4 balancer in front of a wsgate listener with
proxy_protocol = true: `send-proxy-v2` and `send-proxy` (v1). Everything runs on
127.0.0.1, so the client is told from the balancer by its port: the access log and
/connections must show the WebSocket client's own source port, and `via` HAProxy's.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

HAPROXY_CFG = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend v2
    bind 127.0.0.1:{v2_port}
    default_backend gw_v2
frontend v1
    bind 127.0.0.1:{v1_port}
    default_backend gw_v1
backend gw_v2
    server gw 127.0.0.1:{gw_port} send-proxy-v2
backend gw_v1
    server gw 127.0.0.1:{gw_port} send-proxy
"""


class HAProxy:
    """`haproxy -db -f <cfg>`, stopped by its PID."""

    def __init__(self, gw_port: int):
        self.v2_port = h.free_port()
        self.v1_port = h.free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-haproxy-")
        self.cfg = os.path.join(self.tmp.name, "haproxy.cfg")
        with open(self.cfg, "w", encoding="ascii") as f:
            f.write(HAPROXY_CFG.format(v2_port=self.v2_port, v1_port=self.v1_port,
                                       gw_port=gw_port))
        self.log = open(os.path.join(self.tmp.name, "haproxy.log"), "wb")
        self.proc = None

    async def start(self):
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited with {self.proc.returncode}: "
                                     + self.output())
            return h.tcp_accepts("127.0.0.1", self.v2_port) and \
                h.tcp_accepts("127.0.0.1", self.v1_port)
        await h.wait_until(up, h.STARTUP_DEADLINE, "haproxy to listen")
        return self

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        self.tmp.cleanup()


class HAProxyInFront(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        if not os.access(HAPROXY, os.X_OK):
            self.skipTest(f"haproxy not found at {HAPROXY} (scripts/install-deps.sh test)")
        self.backend = await self.start_backend()
        self.admin_port = h.free_port()
        gw_port = h.free_port()
        self.gw = await self.start_gateway(ac.with_admin(h.simple_config(
            gw_port, [self.backend.address],
            listener={"proxy_protocol": True, "proxy_protocol_from": ["127.0.0.1"]}),
            self.admin_port))
        self.admin = ac.Admin(self.admin_port)
        await self.admin.wait_up()
        self.haproxy = await HAProxy(gw_port).start()
        self.addCleanup(self.haproxy.stop)

    async def check_client_seen(self, lb_port: int, version: str):
        async with h.ws_connect(lb_port) as ws:
            client_port = ws.local_address[1]
            await ws.send("through haproxy")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "through haproxy")
            # While it is open, /connections lists it under the client's own address.
            table = await self.admin.connections()
            clients = [c["client"] for c in table["connections"]]
            self.assertIn(f"127.0.0.1:{client_port}", clients)
            self.assertEqual(self.backend.conns[-1].header("X-Forwarded-For"), "127.0.0.1")
        line = await self.gw.wait_access_line(
            lambda f: f.get("client") == f"127.0.0.1:{client_port}",
            f"the client's own port {client_port}")
        self.assertEqual(line["status"], "101")
        via_port = int(line["via"].rsplit(":", 1)[1])
        self.assertNotEqual(via_port, client_port)
        m = await self.admin.metrics()
        self.assertGreaterEqual(m.value("wsgate_proxy_protocol_headers_total", version=version), 1)

    async def test_send_proxy_v2(self):
        await self.check_client_seen(self.haproxy.v2_port, "v2")

    async def test_send_proxy_v1(self):
        await self.check_client_seen(self.haproxy.v1_port, "v1")

    async def test_many_clients_through_haproxy(self):
        # 20 concurrent WebSockets: each is logged with its own source port.
        ports = []
        start = time.monotonic()

        async def one(i):
            async with h.ws_connect(self.haproxy.v2_port) as ws:
                ports.append(ws.local_address[1])
                await ws.send(f"m{i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"m{i}")
        await asyncio.gather(*(one(i) for i in range(20)))
        for p in ports:
            await self.gw.wait_access_line(lambda f, p=p: f.get("client") == f"127.0.0.1:{p}",
                                           f"client port {p}")
        self.assertLess(time.monotonic() - start, 30)


if __name__ == "__main__":
    h.main()
