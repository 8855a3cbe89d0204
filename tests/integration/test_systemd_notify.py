"""wsgate under a stand-in for systemd: $NOTIFY_SOCKET names a datagram socket this test
binds (a path, then an abstract name), and the messages of the notification protocol
(sd_notify(3)) must come in order: READY=1 once the listener accepts, RELOADING=1 then
READY=1 around a SIGHUP reload (with the result and the relayed connections in
STATUS=), a rejected reload still ending in READY=1, and STOPPING=1 on SIGTERM.
"""

import asyncio
import os
import signal
import socket
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class NotifySocket:
    """The receiving end of $NOTIFY_SOCKET: one datagram per message."""

    def __init__(self, abstract: bool):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"wsgate-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(self.tmp.name, "notify")
            self.sock.bind(path)
            self.env = path
        self.sock.setblocking(False)
        self.messages = []

    async def next(self, timeout: float = 15.0) -> dict:
        """The next message as {KEY: value}."""
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no notification within {timeout}s; had {self.messages}")
        text = data.decode()
        self.messages.append(text)
        return dict(line.split("=", 1) for line in text.split("\n") if line)

    async def until(self, key: str, timeout: float = 15.0) -> tuple:
        """Messages up to and including the first with `key`; (that one, those before)."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            m = await self.next(max(0.1, deadline - time.monotonic()))
            if key in m:
                return m, before
            before.append(m)

    def close(self):
        self.sock.close()
        self.tmp.cleanup()


class SystemdNotify(h.GatewayCase):
    async def run_sequence(self, abstract: bool):
        notify = NotifySocket(abstract)
        self.addCleanup(notify.close)
        backend = await self.start_backend()
        port = h.free_port()
        text = h.simple_config(port, [backend.address])
        old = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = notify.env
        try:
            gw = h.Gateway(text)
            gw._spawn()  # not start_async: READY=1 is what tells us it is up
        finally:
            if old is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = old
        self.addAsyncCleanup(gw.stop_async)

        ready, _ = await notify.until("READY")
        self.assertEqual(ready["READY"], "1")
        # READY=1 means the listening sockets are open: a connect succeeds at once.
        self.assertTrue(h.tcp_accepts("127.0.0.1", port), "READY=1 before the listener accepts")
        self.assertIn(f"listening on 127.0.0.1:{port}", ready["STATUS"])
        self.assertIn("2 worker(s), 0 relayed connection(s)", ready["STATUS"])

        async with h.ws_connect(port) as ws:
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), 10)
            # A reload with the same file: RELOADING=1, then READY=1 with the result.
            gw.send_signal(signal.SIGHUP)
            reloading, _ = await notify.until("RELOADING")
            self.assertEqual(reloading["RELOADING"], "1")
            self.assertRegex(reloading["MONOTONIC_USEC"], r"^\d+$")
            done = await notify.next()
            self.assertEqual(done.get("READY"), "1", notify.messages)
            self.assertIn("reloaded", done["STATUS"])
            self.assertIn("1 relayed connection(s)", done["STATUS"])

            # A file wsgate refuses: still READY=1 (the old config runs on), saying so.
            with open(gw.config_path, "w", encoding="utf-8") as f:
                f.write(text.replace('path = "/echo"', 'path = "/echo"\nbogus = 1'))
            gw.send_signal(signal.SIGHUP)
            await notify.until("RELOADING")
            done = await notify.next()
            self.assertEqual(done.get("READY"), "1", notify.messages)
            self.assertIn("reload rejected", done["STATUS"])
            self.assertIn("bogus", done["STATUS"])
            await ws.send("still here")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "still here")

            gw.send_signal(signal.SIGTERM)
            stopping, _ = await notify.until("STOPPING")
            self.assertEqual(stopping["STOPPING"], "1")
            self.assertIn("draining", stopping["STATUS"])
        self.assertEqual(await gw.wait_exit(h.STOP_DEADLINE), 0)
        gw._finish(0, body_failed=False)

    async def test_notify_socket_path(self):
        await self.run_sequence(abstract=False)

    async def test_notify_socket_abstract(self):
        await self.run_sequence(abstract=True)


if __name__ == "__main__":
    h.main()
