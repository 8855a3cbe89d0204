"""systemd socket activation (sd_listen_fds(3) semantics): wsgate started with a
listening socket as fd 3, LISTEN_FDS=1 and LISTEN_PID=<its own pid> serves on that
socket instead of binding. The socket is bound here without SO_REUSEPORT, so a bind of
the same address by wsgate would fail: serving at all shows it did not bind, and the
kernel lists exactly one listening socket for the port. With LISTEN_PID naming another
process the passed socket is not used (wsgate binds, and fails here).
"""

import asyncio
import os
import socket
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

# What systemd does before exec: the socket becomes fd 3, LISTEN_FDS=1, and LISTEN_PID
# is the pid that exec()s wsgate (this wrapper's, which exec keeps).
WRAPPER = """\
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
if fd != 3:
    os.close(fd)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = sys.argv[2] or str(os.getpid())
os.execv(sys.argv[3], sys.argv[3:])
"""


def listening_sockets_on(port: int) -> int:
    """LISTEN (state 0A) entries for 127.0.0.1:port in /proc/net/tcp."""
    want = f"0100007F:{port:04X}"
    count = 0
    with open("/proc/net/tcp", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                count += 1
    return count


class SocketActivation(h.GatewayCase):
    def activated_socket(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: nobody else can bind this port
        s.listen(128)
        self.addCleanup(s.close)
        return s

    def gateway(self, sock: socket.socket, backend, listen_pid: str = "", **kw) -> h.Gateway:
        port = sock.getsockname()[1]
        self.admin_port = h.free_port()
        text = ac.with_admin(h.simple_config(port, [backend.address], workers=2), self.admin_port)
        fd = sock.fileno()
        return h.Gateway(text, pass_fds=(fd,),
                         wrap=lambda argv: [sys.executable, "-c", WRAPPER, str(fd), listen_pid]
                         + argv, **kw)

    async def test_serves_on_the_passed_socket_without_binding(self):
        backend = await self.start_backend()
        sock = self.activated_socket()
        port = sock.getsockname()[1]
        gw = self.gateway(sock, backend)
        await gw.start_async()
        self.addAsyncCleanup(self._stop_gateway, gw)
        sock.close()  # wsgate holds the only copy now
        # Both workers accept from the one socket.
        for i in range(20):
            async with h.ws_connect(port) as ws:
                await ws.send(f"m{i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"m{i}")
        self.assertEqual(listening_sockets_on(port), 1)
        self.assertIn("systemd passed 1 socket(s)", gw.stderr_text())
        self.assertIn(f"listener 127.0.0.1:{port}: 1 socket(s) from systemd", gw.stderr_text())
        # The admin listener was not passed: bound as usual.
        admin = ac.Admin(self.admin_port)
        await admin.wait_up()

    async def test_listen_pid_of_another_process_is_ignored(self):
        backend = await self.start_backend()
        sock = self.activated_socket()
        gw = self.gateway(sock, backend, listen_pid=str(os.getpid()), expect_exit_code=1)
        gw._spawn()
        rc = await gw.wait_exit(h.STARTUP_DEADLINE)
        err = gw.stderr_text()
        gw._finish(rc, body_failed=False)
        self.assertEqual(rc, 1, err)
        self.assertIn("address already in use", err.lower())
        self.assertNotIn("systemd passed", err)


if __name__ == "__main__":
    h.main()
