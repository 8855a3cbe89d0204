"""Out of file descriptors (issue 14 item 14): wsgate raises its soft RLIMIT_NOFILE to
the hard limit at start and says so; when accept(2) fails with EMFILE it pauses
accepting instead of spinning on the readable listening socket, counts the failure in
wsgate_accept_errors_total{reason="emfile"}, and serves again once descriptors are free.

wsgate runs with RLIMIT_NOFILE soft 64, hard 96 (set for the child like `prlimit` or
`ulimit -n` would); the test holds more TCP connections than that.
"""

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import admin_client as ac  # noqa: E402

SOFT, HARD = 64, 96
HELD = 140  # more connections than the gateway can hold descriptors for


class LimitedGateway(h.Gateway):
    """A Gateway whose process starts with RLIMIT_NOFILE (SOFT, HARD)."""

    def _spawn(self) -> None:
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.config_text)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [h.WSGATE_BIN, "-c", self.config_path], stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=self._err, cwd=self.dir,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, HARD)))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class FdLimit(h.GatewayCase):
    async def test_h1_h1_fd_limit_raised_and_emfile_backs_off(self):
        h.require_wsgate(self)
        backend = await self.start_backend()
        admin_port = h.free_port()
        text = ac.with_admin(h.simple_config(h.free_port(), [backend.address], workers=1),
                             admin_port)
        gw = LimitedGateway(text)
        await gw.start_async()
        self.addAsyncCleanup(self._stop_gateway, gw)
        admin = ac.Admin(admin_port)
        await admin.wait_up()

        # The soft limit went up to the hard limit, and the log says so.
        await h.wait_until(lambda: "open file limit raised from 64 to 96" in gw.stderr_text(),
                           10, "the raised open file limit in wsgate's log")
        with open(f"/proc/{gw.pid}/limits") as f:
            limits = [ln for ln in f if ln.startswith("Max open files")][0].split()
        self.assertEqual(limits[3:5], [str(HARD), str(HARD)], limits)

        held = []
        try:
            for _ in range(HELD):
                s = socket.socket()
                s.settimeout(5)
                s.connect(("127.0.0.1", gw.port))  # completes in the kernel's backlog
                held.append(s)
            await h.wait_until(lambda: "accept failed: Too many open files" in gw.stderr_text(),
                               10, "an EMFILE accept failure in wsgate's log\n" + gw.describe())
            self.assertGreaterEqual(open_fds(gw.pid), HARD - 2)
            # Paused, not spinning: over a second at the limit the gateway uses a small
            # part of one core (a busy accept loop uses all of it).
            cpu_before, t0 = cpu_seconds(gw.pid), time.monotonic()
            await asyncio.sleep(1.0)  # a measurement window, not a synchronisation
            used = (cpu_seconds(gw.pid) - cpu_before) / (time.monotonic() - t0)
            self.assertLess(used, 0.5, f"wsgate used {used:.0%} of a core while at the "
                                       f"descriptor limit\n{gw.describe()}")
        finally:
            for s in held:
                s.close()

        # Descriptors come back: new WebSockets are served again.
        async def echo_ok():
            try:
                async with h.ws_connect(gw.port, open_timeout=2) as ws:
                    await ws.send("again")
                    return await asyncio.wait_for(ws.recv(), 2) == "again"
            except (OSError, asyncio.TimeoutError, Exception):
                return False

        deadline = time.monotonic() + 20
        while not await echo_ok():
            self.assertLess(time.monotonic(), deadline,
                            "no echo after the held connections closed\n" + gw.describe())
            await asyncio.sleep(0.1)
        m = await admin.wait_metrics(
            lambda m: m.value("wsgate_accept_errors_total", reason="emfile") >= 1,
            "wsgate_accept_errors_total{reason=\"emfile\"} >= 1")
        self.assertEqual(m.value("wsgate_accept_errors_total", reason="enfile"), 0)


if __name__ == "__main__":
    h.main()
