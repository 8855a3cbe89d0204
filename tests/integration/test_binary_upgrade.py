"""Binary upgrade: a new wsgate started with `--takeover` takes the listening sockets
(and the admin listener) over from the running one through its upgrade_socket, while
python3-websockets clients keep sending numbered messages through both to the echo
backend and others keep opening new connections. No handshake may fail, no message may
be lost or reordered; the old process stops accepting, lets its WebSockets run, and
exits 0 when the last one ends (or closes them with 1001 at upgrade_deadline). Its
HTTP/1.1 keep-alive connections end after their response, HTTP/2 ones get GOAWAY.
Failures (nothing to take over, a rejected config, a new process that cannot start)
leave the running one serving, untouched.
"""

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import websockets.exceptions

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402

TOOK_OVER = "serves the listeners now"  # the new process's log once the old one stopped
WINDOW = 4  # messages in flight per client


class Figures:
    def __init__(self):
        self.handshakes = 0
        self.opened_at: list[float] = []  # time.monotonic() of each handshake
        self.handshake_failures: list[str] = []
        self.messages = 0
        self.message_errors: list[str] = []
        self.closes: list[int] = []


class LongClient:
    """One WebSocket that sends "<id>:<n>" with n = 0, 1, 2 ... (WINDOW in flight) and
    checks every echo comes back in order. With `reconnect`, a Close 1001 from the
    gateway is followed by a new connection that goes on from the first unanswered n."""

    def __init__(self, port: int, cid: int, figures: Figures, reconnect: bool = False):
        self.port, self.cid, self.fig, self.reconnect = port, cid, figures, reconnect
        self.next = 0          # first number not yet answered
        self.stop = asyncio.Event()
        self.connected = asyncio.Event()
        self.task = asyncio.create_task(self.run())

    async def connect(self):
        try:
            ws = await asyncio.wait_for(h.ws_connect(self.port), 15)
        except Exception as e:  # noqa: BLE001 - any failure to open is what we count
            self.fig.handshake_failures.append(f"long {self.cid}: {type(e).__name__}: {e}")
            raise
        self.fig.handshakes += 1
        self.fig.opened_at.append(time.monotonic())
        return ws

    async def run(self):
        ws = await self.connect()
        self.connected.set()
        try:
            while not self.stop.is_set():
                batch = [f"{self.cid}:{n}" for n in range(self.next, self.next + WINDOW)]
                try:
                    for m in batch:
                        await ws.send(m)
                    for m in batch:
                        got = await asyncio.wait_for(ws.recv(), 20)
                        if got != m:
                            self.fig.message_errors.append(f"{self.cid}: expected {m}, got {got}")
                            return
                        self.next += 1
                        self.fig.messages += 1
                except websockets.exceptions.ConnectionClosed as e:
                    code = e.rcvd.code if e.rcvd else None
                    self.fig.closes.append(code)
                    if not self.reconnect or code != 1001:
                        self.fig.message_errors.append(f"{self.cid}: closed ({code}) at {self.next}")
                        return
                    # Numbers the gateway did not answer are sent again on the new one.
                    ws = await self.connect()
                await asyncio.sleep(0.01)
            await asyncio.wait_for(ws.close(), 15)
        finally:
            await ws.close()


class ChurnClient:
    """Opens a new WebSocket again and again: three numbered messages, then a close."""

    def __init__(self, port: int, cid: int, figures: Figures):
        self.port, self.cid, self.fig = port, cid, figures
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.run())

    async def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                ws = await asyncio.wait_for(h.ws_connect(self.port), 15)
            except Exception as e:  # noqa: BLE001
                self.fig.handshake_failures.append(f"churn {self.cid}: {type(e).__name__}: {e}")
                await asyncio.sleep(0.05)
                continue
            self.fig.handshakes += 1
            self.fig.opened_at.append(time.monotonic())
            try:
                for _ in range(3):
                    m = f"c{self.cid}:{n}"
                    await ws.send(m)
                    got = await asyncio.wait_for(ws.recv(), 20)
                    if got != m:
                        self.fig.message_errors.append(f"churn {self.cid}: {m} -> {got}")
                    self.fig.messages += 1
                    n += 1
                await asyncio.wait_for(ws.close(), 15)
            except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError) as e:
                self.fig.message_errors.append(f"churn {self.cid}: {type(e).__name__} at {n}")
            await asyncio.sleep(0.005)


class ChurnLoad:
    """`n` ChurnClients on a thread and event loop of their own: they keep connecting
    while the test's loop is busy starting a process (Popen blocks it until exec)."""

    def __init__(self, port: int, n: int, figures: Figures):
        self.port, self.n, self.fig = port, n, figures
        self.stopping = threading.Event()
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error.append(e)

    async def _main(self) -> None:
        clients = [ChurnClient(self.port, i, self.fig) for i in range(self.n)]
        while not self.stopping.is_set():
            await asyncio.sleep(h.POLL_INTERVAL)
        for c in clients:
            c.stop.set()
        await asyncio.wait_for(asyncio.gather(*(c.task for c in clients)), 30)

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.get_running_loop().run_in_executor(None, self.thread.join, 40)
        assert not self.thread.is_alive(), "churn clients did not stop"
        assert not self.error, self.error


class BinaryUpgrade(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-upgrade-")
        self.addCleanup(self.tmp.cleanup)
        self.upgrade_socket = os.path.join(self.tmp.name, "upgrade.sock")
        self.backend = h.EchoBackendProcess()
        await self.backend.__aenter__()
        self.addAsyncCleanup(self.backend.__aexit__, None, None, None)
        self.port = h.free_port()
        self.admin_port = h.free_port()
        self.windows: list[tuple[float, float]] = []  # (start, taken over) of each takeover

    def config(self, deadline: str = "120s", extra: str = "", **kw) -> str:
        return (f"upgrade_socket = {h.toml_value(self.upgrade_socket)}\n"
                f"upgrade_deadline = {h.toml_value(deadline)}\n" + extra +
                ac.with_admin(h.simple_config(self.port, [self.backend.address], **kw),
                              self.admin_port))

    async def take_over(self, config_text: str) -> tuple[h.Gateway, float]:
        """Starts a new process with --takeover; returns it and the time from its start
        until it logged that the old one stopped accepting."""
        start = time.monotonic()
        new = h.Gateway(config_text, extra_args=("--takeover",),
                        ready=lambda g: TOOK_OVER in g.stderr_text())
        await new.start_async()
        self.addAsyncCleanup(self._stop_gateway, new)
        self.windows.append((start, time.monotonic()))
        return new, time.monotonic() - start

    def report(self, name: str, fig: Figures, took: float, extra: str = "") -> None:
        during = sum(1 for t in fig.opened_at for a, b in self.windows if a <= t <= b)
        print(f"\n[{name}] connections opened {fig.handshakes} ({during} while a new process "
              f"was taking over), handshake failures "
              f"{len(fig.handshake_failures)}, messages echoed {fig.messages}, lost or "
              f"reordered {len(fig.message_errors)}, takeover {took * 1000:.0f} ms{extra}",
              file=sys.stderr)

    async def test_takeover_under_load_old_exits_when_its_last_websocket_ends(self):
        old = await self.start_gateway(self.config(drain_timeout="10s"))
        admin = ac.Admin(self.admin_port)
        await admin.wait_up()
        fig = Figures()
        longs = [LongClient(self.port, i, fig) for i in range(30)]
        for c in longs:
            await asyncio.wait_for(c.connected.wait(), 20)
        churn = ChurnLoad(self.port, 12, fig)
        self.addAsyncCleanup(churn.stop)
        await h.wait_until(lambda: all(c.next >= 20 for c in longs), 30, "traffic on every client")
        handshakes_before = fig.handshakes

        new, took = await self.take_over(self.config(drain_timeout="10s"))
        self.assertIn("took over the listening sockets", old.stderr_text())
        # New connections keep opening throughout, now on the new process.
        await h.wait_until(lambda: fig.handshakes >= handshakes_before + 40, 30,
                           "new connections after the takeover")
        messages_at_takeover = sum(c.next for c in longs)
        await h.wait_until(lambda: sum(c.next for c in longs) >= messages_at_takeover + 400, 30,
                           "the old process's WebSockets relaying after the takeover")
        await churn.stop()
        # The admin listener went over too: /ready from the new process.
        status, _, _ = await admin.get("/ready")
        self.assertEqual(status, 200)
        await h.wait_until(lambda: len(new.access_log_lines()) > 0, 10,
                           "connections served by the new process")
        self.assertTrue(h.pid_alive(old.pid), "the old process left with WebSockets open")

        # The old process's WebSockets end one by one; it exits with the last.
        for c in longs[:-1]:
            c.stop.set()
            await asyncio.wait_for(c.task, 30)
        await asyncio.sleep(0.5)
        self.assertIsNone(old.proc.poll(), "the old process exited with a WebSocket open")
        longs[-1].stop.set()
        await asyncio.wait_for(longs[-1].task, 30)
        self.assertEqual(await old.wait_exit(20), 0, old.describe())

        self.report("takeover under load", fig, took,
                    f", {len(longs)} WebSockets on the old process to the end")
        self.assertEqual(fig.handshake_failures, [])
        self.assertEqual(fig.message_errors, [])
        self.assertEqual(fig.closes, [])
        # The new process serves on.
        async with h.ws_connect(self.port) as ws:
            await ws.send("after")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "after")
        self.assertIn("stopped accepting", new.stderr_text())

    async def test_upgrade_deadline_closes_with_1001_and_clients_move(self):
        old = await self.start_gateway(self.config(deadline="2s", extra='drain_spread = "1s"\n'))
        fig = Figures()
        longs = [LongClient(self.port, i, fig, reconnect=True) for i in range(8)]
        for c in longs:
            await asyncio.wait_for(c.connected.wait(), 20)
        await h.wait_until(lambda: all(c.next >= 10 for c in longs), 30, "traffic")
        new, took = await self.take_over(self.config(deadline="2s"))
        handed = time.monotonic()
        self.assertEqual(await old.wait_exit(30), 0, old.describe())
        exited = time.monotonic() - handed
        self.assertIn("upgrade_deadline reached", old.stderr_text())
        # Every client was closed with 1001 and went on, on the new process.
        await h.wait_until(lambda: len(fig.closes) == len(longs), 10, "a Close per client")
        at_exit = sum(c.next for c in longs)
        await h.wait_until(lambda: sum(c.next for c in longs) >= at_exit + 200, 30,
                           "traffic on the new process")
        for c in longs:
            c.stop.set()
        await asyncio.wait_for(asyncio.gather(*(c.task for c in longs)), 30)
        self.report("upgrade_deadline 2s", fig, took, f", old exited {exited:.1f} s after")
        self.assertEqual(fig.closes, [1001] * len(longs))
        self.assertGreaterEqual(exited, 1.5)
        self.assertEqual(fig.handshake_failures, [])
        self.assertEqual(fig.message_errors, [])

    async def test_repeated_takeovers_while_clients_keep_connecting(self):
        gateways = [await self.start_gateway(self.config())]
        fig = Figures()
        churn = ChurnLoad(self.port, 16, fig)
        self.addAsyncCleanup(churn.stop)
        times = []
        for _ in range(3):
            before = fig.handshakes
            await h.wait_until(lambda: fig.handshakes >= before + 30, 30, "new connections")
            new, took = await self.take_over(self.config())
            times.append(took)
            # The old process had only short connections: it exits once they end.
            self.assertEqual(await gateways[-1].wait_exit(30), 0, gateways[-1].describe())
            gateways.append(new)
        before = fig.handshakes
        await h.wait_until(lambda: fig.handshakes >= before + 30, 30, "new connections")
        await churn.stop()
        self.report("3 takeovers in a row", fig, max(times),
                    " (the longest; " + ", ".join(f"{t * 1000:.0f}" for t in times) + " ms)")
        self.assertEqual(fig.handshake_failures, [])
        self.assertEqual(fig.message_errors, [])

    async def http_response(self, reader) -> bytes:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        await asyncio.wait_for(reader.readexactly(length), 10)
        return head

    async def test_http_keep_alive_connections_end_on_the_old_process(self):
        # A long handshake_timeout: only the handover may end these connections early.
        config = self.config(listener={"handshake_timeout": "60s"})
        old = await self.start_gateway(config)
        request = b"GET /echo HTTP/1.1\r\nHost: gw.test\r\n\r\n"
        # An idle kept-alive connection, and one whose request is half sent.
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", self.port)
        idle_w.write(request)
        head = await self.http_response(idle_r)
        self.assertNotIn(b"connection: close", head.lower())
        half_r, half_w = await asyncio.open_connection("127.0.0.1", self.port)
        half_w.write(request[:20])
        await half_w.drain()
        await h.wait_until(lambda: old.stdout_text().count("access ") >= 1, 10, "the first request")
        await self.take_over(config)
        # Idle: closed by the old process at once.
        self.assertEqual(await asyncio.wait_for(idle_r.read(), 20), b"")
        # Half sent: answered by the old process, then closed (no keep-alive any more).
        half_w.write(request[20:])
        head = await self.http_response(half_r)
        self.assertTrue(head.startswith(b"HTTP/1.1 404 "), head)  # the backend's answer
        self.assertIn(b"connection: close", head.lower())
        self.assertEqual(await asyncio.wait_for(half_r.read(), 10), b"")
        for w in (idle_w, half_w):
            w.close()
        self.assertEqual(await old.wait_exit(20), 0, old.describe())
        self.assertEqual(old.stdout_text().count("access "), 2, old.stdout_text())

    async def test_http2_connection_gets_goaway_its_streams_keep_the_old_process(self):
        config = self.config(listener={"h2c": True})
        old = await self.start_gateway(config)
        conn = await c.H2Conn.open("127.0.0.1", self.port, tls=False)
        self.addAsyncCleanup(conn.close)
        ws = await c.H2WebSocket.open(conn, "/echo", scheme="http")
        await ws.send(h.OP_TEXT, b"before")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"before"))
        await self.take_over(config)
        # RFC 9113 6.8: GOAWAY, NO_ERROR, naming our stream as processed (it goes on; the
        # python3-h2 client ends the connection on a GOAWAY, so it is not used further).
        await conn.wait_for(lambda: conn.terminated is not None, 10, "GOAWAY")
        self.assertEqual(int(conn.terminated.error_code), 0)
        self.assertEqual(conn.terminated.last_stream_id, ws.st.id)
        await asyncio.sleep(0.3)
        self.assertIsNone(old.proc.poll(), "the old process left with an HTTP/2 stream open")
        await conn.close()
        self.assertEqual(await old.wait_exit(20), 0, old.describe())

    def run_wsgate(self, config_text: str, *args: str) -> subprocess.CompletedProcess:
        path = os.path.join(self.tmp.name, "new.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(config_text)
        return subprocess.run([h.WSGATE_BIN, "-c", path, *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    async def echo_once(self, text: str) -> None:
        async with h.ws_connect(self.port) as ws:
            await ws.send(text)
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)

    async def test_failed_takeovers_leave_the_running_process_untouched(self):
        # Nothing to take over.
        r = self.run_wsgate(self.config(), "--takeover")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect to " + self.upgrade_socket, r.stderr)
        self.assertIn("nothing was taken over", r.stderr)
        # A socket file left by a process that died: refused, then replaced at start.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stale.bind(self.upgrade_socket)
        stale.close()
        r = self.run_wsgate(self.config(), "--takeover")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Connection refused", r.stderr)

        old = await self.start_gateway(self.config())
        async with h.ws_connect(self.port) as held:
            await held.send("held")
            self.assertEqual(await asyncio.wait_for(held.recv(), 10), "held")
            # A config the new binary rejects: it never connects.
            r = self.run_wsgate(self.config().replace("workers = 2", "workers = \"two\""),
                                "--takeover")
            self.assertEqual(r.returncode, 1)
            self.assertIn("workers", r.stderr)
            # A new process that fails after it got the sockets (a new listener whose
            # address is taken): the old one hears it go and keeps serving.
            blocker = socket.socket()
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            try:
                taken = blocker.getsockname()[1]
                r = self.run_wsgate(self.config(extra_listeners=[f"127.0.0.1:{taken}"]),
                                    "--takeover")
            finally:
                blocker.close()
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("address already in use", r.stderr.lower())
            await h.wait_until(lambda: "abandoned" in old.stderr_text(), 10, "the old one noticed")
            self.assertNotIn("took over", old.stderr_text())
            await self.echo_once("still the old one")
            await held.send("held still")
            self.assertEqual(await asyncio.wait_for(held.recv(), 10), "held still")
            # And a proper takeover works after all that.
            new, _ = await self.take_over(self.config())
            await self.echo_once("the new one")
        self.assertEqual(await old.wait_exit(20), 0, old.describe())
        self.assertTrue(h.pid_alive(new.pid))

    async def test_listeners_added_and_removed_by_the_new_config(self):
        kept, gone, added = self.port, h.free_port(), h.free_port()
        old = await self.start_gateway(self.config(extra_listeners=[f"127.0.0.1:{gone}"]))
        self.assertTrue(h.tcp_accepts("127.0.0.1", gone))
        new, _ = await self.take_over(self.config(extra_listeners=[f"127.0.0.1:{added}"]))
        self.assertEqual(await old.wait_exit(20), 0, old.describe())
        for port in (kept, added):
            async with h.ws_connect(port) as ws:
                await ws.send("x")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")
        self.assertFalse(h.tcp_accepts("127.0.0.1", gone), "a listener the new config dropped")
        self.assertIn(f"127.0.0.1:{kept}: 2 socket(s) from the running wsgate", new.stderr_text())
        self.assertIn("matches no listener", new.stderr_text())


if __name__ == "__main__":
    h.main()
