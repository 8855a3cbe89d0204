"""Shared harness for wsgate's integration tests.

The tests drive the real wsgate binary with independent peers: Debian's
python3-websockets 10.4 (asyncio API) as client and as backend, raw sockets
where a library refuses to send bad input, and curl where useful.

Environment (set by CTest; defaults make the scripts runnable by hand from a
build in <source>/build):
  WSGATE_BIN            path of the wsgate binary
  WSGATE_ECHO_BACKEND   path of the C++ demo echo backend
  WSGATE_SOURCE_DIR     source tree root

Rules every helper keeps: every wait has a deadline and polls (no fixed
sleeps), every loop is bounded in time and count, every process started is
stopped by its PID, and only 127.0.0.1 / ::1 are used.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import http
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any, Awaitable, Callable, Iterable, Optional

import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("WSGATE_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
WSGATE_BIN = os.environ.get("WSGATE_BIN") or os.path.join(SOURCE_DIR, "build", "wsgate")
ECHO_BACKEND_BIN = os.environ.get("WSGATE_ECHO_BACKEND") or os.path.join(
    SOURCE_DIR, "build", "wsgate-echo-backend")

POLL_INTERVAL = 0.02          # seconds between polls of a condition
STARTUP_DEADLINE = 20.0       # gateway must accept TCP within this
STOP_DEADLINE = 30.0          # gateway must exit after SIGTERM within this
OPEN_TIMEOUT = 20.0           # websockets opening handshake (ASan builds are slow)

# Text a sanitizer prints when it finds a bug; any of it in wsgate's stderr fails the test.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---------------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------------

def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def have_binary(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def require_wsgate(testcase) -> None:
    """Run by hand without a build: skip, saying why. Under CTest (WSGATE_BIN set) a
    missing binary is a failure, never a silent skip."""
    if have_binary(WSGATE_BIN):
        return
    if os.environ.get("WSGATE_BIN"):
        testcase.fail(f"WSGATE_BIN={WSGATE_BIN} is not an executable file")
    testcase.skipTest(f"wsgate binary not found at {WSGATE_BIN} (set WSGATE_BIN)")


def wait_until_sync(predicate: Callable[[], Any], timeout: float, what: str,
                    interval: float = POLL_INTERVAL) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
                     interval: float = POLL_INTERVAL) -> Any:
    """Polls `predicate` until it returns something truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_for_stall(gw, sent: Callable[[], tuple], done: Callable[[], bool], *,
                         stall_s: float, window_s: float) -> tuple:
    """Backpressure tests: samples until the sender makes no progress for `stall_s`
    (after at least 2 s, within `window_s`), or `done()`. `sent()` returns (bytes sent,
    when they last grew). Returns (stalled, bytes sent then, wsgate's RSS growth in KiB,
    its RSS before, in KiB)."""
    baseline = gw.vmrss_kib()
    start = time.monotonic()
    peak, stalled, samples = baseline, False, 0
    while time.monotonic() - start < window_s and samples < 10000:
        samples += 1
        peak = max(peak, gw.vmrss_kib())
        if done():
            break
        bytes_sent, at = sent()
        if bytes_sent > 0 and time.monotonic() - at > stall_s and time.monotonic() - start > 2.0:
            stalled = True
            break
        await asyncio.sleep(0.05)
    return stalled, sent()[0], peak - baseline, baseline


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            return True
    except OSError:
        return False


def read_vmrss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


# ---------------------------------------------------------------------------------
# Config text
# ---------------------------------------------------------------------------------

def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a valid TOML basic string for the ASCII we use
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def toml_table(header: str, values: dict) -> str:
    lines = [f"[[{header}]]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def make_config(listen: str, upstreams: dict[str, list[str]], routes: list[dict], *,
                workers: int = 2, drain_timeout: str = "10s", access_log: str = "-",
                listener: Optional[dict] = None, extra_listeners: Iterable[str] = ()) -> str:
    """TOML for one listener, some upstreams ({name: [servers]}) and routes (dicts of
    route keys, in order). `listener` adds keys to the listener table."""
    text = (f"workers = {workers}\n"
            f"drain_timeout = {toml_value(drain_timeout)}\n"
            f"access_log = {toml_value(access_log)}\n\n")
    text += toml_table("listener", {"address": listen, **(listener or {})}) + "\n"
    for extra in extra_listeners:
        text += toml_table("listener", {"address": extra}) + "\n"
    for name, servers in upstreams.items():
        text += toml_table("upstream", {"name": name, "servers": servers}) + "\n"
    for route in routes:
        text += toml_table("route", route) + "\n"
    return text


def simple_config(gw_port: int, backend_servers: list[str], *, path: str = "/echo",
                  route: Optional[dict] = None, listener: Optional[dict] = None,
                  listen_host: str = "127.0.0.1", **kw) -> str:
    """One listener on listen_host:gw_port, one upstream "echo", one route host "*"."""
    listen = f"[{listen_host}]:{gw_port}" if ":" in listen_host else f"{listen_host}:{gw_port}"
    return make_config(listen, {"echo": backend_servers},
                       [{"host": "*", "path": path, "upstream": "echo", **(route or {})}],
                       listener=listener, **kw)


_ADDRESS_RE = re.compile(r'^\s*address\s*=\s*"([^"]+)"', re.M)


def first_listener_address(config_text: str) -> tuple[str, int]:
    m = _ADDRESS_RE.search(config_text)
    if not m:
        raise ValueError("config has no listener address")
    addr = m.group(1)
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
    else:
        host, _, port = addr.rpartition(":")
    return host, int(port)


# ---------------------------------------------------------------------------------
# The gateway process
# ---------------------------------------------------------------------------------

class Gateway:
    """Runs `$WSGATE_BIN -c <file>` on the given TOML text.

    Usable as `with Gateway(text) as gw:` or `async with Gateway(text) as gw:` (the
    async form never blocks the event loop, so backends in the test's loop keep
    running while wsgate drains). Entering waits until the listener accepts TCP; leaving
    sends SIGTERM to the PID, waits for the exit, requires exit code 0 and a stderr free
    of sanitizer reports, and SIGKILLs the PID if it is still alive.

    `extra_args` go after `-c FILE`; `wrap(argv) -> argv` may put a command in front
    (e.g. `sh -c '... exec "$0" "$@"'`); `pass_fds` are inherited by the child;
    `ready(gw) -> bool` replaces "the listener accepts TCP" as the sign of a started
    gateway (another process may already accept on that port).
    """

    def __init__(self, config_text: str, *, listen: Optional[tuple[str, int]] = None,
                 expect_exit_code: int = 0, stop_deadline: float = STOP_DEADLINE,
                 extra_args: tuple = (), wrap: Optional[Callable[[list], list]] = None,
                 pass_fds: tuple = (), ready: Optional[Callable[["Gateway"], bool]] = None):
        self.extra_args = list(extra_args)
        self.wrap = wrap
        self.pass_fds = tuple(pass_fds)
        self.ready = ready
        self.config_text = config_text
        self.listen = listen or first_listener_address(config_text)
        self.expect_exit_code = expect_exit_code
        self.stop_deadline = stop_deadline
        self._tmp = tempfile.TemporaryDirectory(prefix="wsgate-it-")
        self.dir = self._tmp.name
        self.config_path = os.path.join(self.dir, "wsgate.toml")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc: Optional[subprocess.Popen] = None
        self.exit_code: Optional[int] = None
        self._finished = False

    # -- properties and output -------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def port(self) -> int:
        return self.listen[1]

    @property
    def host(self) -> str:
        return self.listen[0]

    def _read(self, path: str) -> str:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stdout_text(self) -> str:
        return self._read(self.stdout_path)

    def stderr_text(self) -> str:
        return self._read(self.stderr_path)

    def access_log_lines(self, path: Optional[str] = None) -> list[str]:
        """Lines starting with "access " on stdout (or in `path` if given)."""
        text = self._read(path) if path else self.stdout_text()
        return [ln for ln in text.splitlines() if ln.startswith("access ")]

    def vmrss_kib(self) -> int:
        return read_vmrss_kib(self.pid)

    def sanitizer_reports(self) -> list[str]:
        err = self.stderr_text()
        return [m for m in SANITIZER_MARKERS if m in err]

    def describe(self, tail: int = 4000) -> str:
        return (f"--- wsgate stderr (tail) ---\n{self.stderr_text()[-tail:]}\n"
                f"--- wsgate stdout (tail) ---\n{self.stdout_text()[-tail:]}")

    # -- start ---------------------------------------------------------------------
    def _spawn(self) -> None:
        if not have_binary(WSGATE_BIN):
            raise AssertionError(f"wsgate binary not found at {WSGATE_BIN}")
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.config_text)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        argv = [WSGATE_BIN, "-c", self.config_path] + self.extra_args
        if self.wrap is not None:
            argv = self.wrap(argv)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, cwd=self.dir, pass_fds=self.pass_fds)

    def _startup_state(self) -> Optional[str]:
        """None while starting, "up" when listening; raises if wsgate exited."""
        rc = self.proc.poll()
        if rc is not None:
            self.exit_code = rc
            raise AssertionError(f"wsgate exited with code {rc} during startup\n"
                                 + self.describe())
        if self.ready is not None:
            return "up" if self.ready(self) else None
        return "up" if tcp_accepts(*self.listen, timeout=0.5) else None

    def start(self) -> "Gateway":
        self._spawn()
        try:
            wait_until_sync(self._startup_state, STARTUP_DEADLINE,
                            f"wsgate to listen on {self.listen}")
        except BaseException:
            self._kill_quietly()
            self._tmp.cleanup()
            raise
        return self

    async def start_async(self) -> "Gateway":
        self._spawn()
        try:
            await wait_until(self._startup_state, STARTUP_DEADLINE,
                             f"wsgate to listen on {self.listen}")
        except BaseException:
            self._kill_quietly()
            self._tmp.cleanup()
            raise
        return self

    # -- stop ----------------------------------------------------------------------
    def send_signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def _kill_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._close_files()

    def _close_files(self) -> None:
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()

    async def wait_exit(self, timeout: float) -> Optional[int]:
        """Waits (without blocking the loop) for wsgate to exit; its code or None."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(POLL_INTERVAL)
        self.exit_code = self.proc.poll()
        return self.exit_code

    def wait_exit_sync(self, timeout: float) -> Optional[int]:
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.exit_code = None
        return self.exit_code

    def _finish(self, rc: Optional[int], body_failed: bool) -> None:
        if self._finished:
            return
        self._finished = True
        problems = []
        if rc is None:
            problems.append(f"wsgate (pid {self.pid}) did not exit within "
                            f"{self.stop_deadline:.0f}s of SIGTERM; killed")
            self._kill_quietly()
        elif rc != self.expect_exit_code:
            problems.append(f"wsgate exited with code {rc}, expected {self.expect_exit_code}")
        self._close_files()
        reports = self.sanitizer_reports()
        if reports:
            problems.append(f"sanitizer report(s) in wsgate's stderr: {reports}")
        detail = self.describe()
        self._tmp.cleanup()
        if body_failed:
            # Do not mask the test's own failure; show what the gateway said.
            if problems:
                print("\n".join(problems), file=sys.stderr)
            print(detail, file=sys.stderr)
            return
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + detail)

    def stop(self, body_failed: bool = False) -> None:
        if self.proc is None:
            self._tmp.cleanup()
            return
        self.send_signal(signal.SIGTERM)
        rc = self.wait_exit_sync(self.stop_deadline)
        self._finish(rc, body_failed)

    async def stop_async(self, body_failed: bool = False) -> None:
        if self.proc is None:
            self._tmp.cleanup()
            return
        self.send_signal(signal.SIGTERM)
        rc = await self.wait_exit(self.stop_deadline)
        self._finish(rc, body_failed)

    def __enter__(self) -> "Gateway":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop(body_failed=exc_type is not None)

    async def __aenter__(self) -> "Gateway":
        return await self.start_async()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        await self.stop_async(body_failed=exc_type is not None)

    # -- access log ----------------------------------------------------------------
    async def wait_access_line(self, predicate: Callable[[dict], bool], what: str,
                               timeout: float = 10.0, path: Optional[str] = None) -> dict:
        """The first access log line (parsed) for which predicate(fields) is true."""
        def find():
            for line in self.access_log_lines(path):
                fields = parse_logfmt(line)
                if predicate(fields):
                    return fields
            return None
        return await wait_until(find, timeout, f"access log line for {what}")


def parse_logfmt(line: str) -> dict:
    """Parses `access k=v k2="quoted v" ...` into a dict (the leading word is "_msg")."""
    fields: dict[str, str] = {}
    pos, n = 0, len(line)
    first = True
    while pos < n:
        while pos < n and line[pos] == " ":
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and line[pos] not in " =":
            pos += 1
        key = line[start:pos]
        if pos < n and line[pos] == "=":
            pos += 1
            if pos < n and line[pos] == '"':
                pos += 1
                buf = []
                while pos < n and line[pos] != '"':
                    if line[pos] == "\\" and pos + 1 < n:
                        pos += 1
                    buf.append(line[pos])
                    pos += 1
                pos += 1  # closing quote
                fields[key] = "".join(buf)
            else:
                vstart = pos
                while pos < n and line[pos] != " ":
                    pos += 1
                fields[key] = line[vstart:pos]
        else:
            fields["_msg" if first else key] = key if first else ""
        first = False
    return fields


# ---------------------------------------------------------------------------------
# The C++ demo echo backend
# ---------------------------------------------------------------------------------

class EchoBackendProcess:
    """Runs `$WSGATE_ECHO_BACKEND --listen 127.0.0.1:PORT`; ready when it prints
    "echo backend listening on"."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="wsgate-echo-")
        self.out_path = os.path.join(self._tmp.name, "out.log")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        try:
            with open(self.out_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"echo backend exited with {self.proc.returncode}:\n"
                                 + self.output())
        return "echo backend listening on" in self.output()

    async def __aenter__(self) -> "EchoBackendProcess":
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen([ECHO_BACKEND_BIN, "--listen", self.address],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT)
        try:
            await wait_until(self._ready, STARTUP_DEADLINE, "echo backend to listen")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(POLL_INTERVAL)
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()
        self._tmp.cleanup()


# ---------------------------------------------------------------------------------
# websockets backends in the test's own event loop
# ---------------------------------------------------------------------------------

@dataclasses.dataclass
class BackendConn:
    """What one backend connection saw."""
    path: str
    request_headers: list  # [(name, value)] as received
    subprotocol: Optional[str]
    extensions: list
    messages: list = dataclasses.field(default_factory=list)
    sent_bytes: int = 0
    sent_msgs: int = 0
    close_code: Optional[int] = None
    close_reason: Optional[str] = None
    error: Optional[BaseException] = None
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    last_progress: float = dataclasses.field(default_factory=time.monotonic)

    def header(self, name: str) -> Optional[str]:
        vals = self.headers(name)
        return vals[0] if vals else None

    def headers(self, name: str) -> list:
        return [v for k, v in self.request_headers if k.lower() == name.lower()]


Handler = Callable[[Any, BackendConn], Awaitable[None]]


async def echo_handler(ws, rec: BackendConn) -> None:
    async for msg in ws:
        rec.messages.append(msg)
        await ws.send(msg)
        rec.sent_msgs += 1


async def record_handler(ws, rec: BackendConn) -> None:
    """Receives and records messages without answering."""
    async for msg in ws:
        rec.messages.append(msg)


def push_handler(total_bytes: int, chunk: int = 64 * 1024) -> Handler:
    """Sends `total_bytes` as binary messages of `chunk` bytes, each send awaiting the
    transport's drain (websockets' own flow control); then waits for the peer's close."""
    async def handler(ws, rec: BackendConn) -> None:
        payload = b"\xab" * chunk
        max_msgs = (total_bytes + chunk - 1) // chunk
        for _ in range(max_msgs):
            await ws.send(payload)
            rec.sent_bytes += chunk
            rec.sent_msgs += 1
            rec.last_progress = time.monotonic()
        await ws.wait_closed()
    return handler


def close_handler(code: int, reason: str = "", after_messages: int = 0) -> Handler:
    """Echoes `after_messages` messages, then closes with `code`."""
    async def handler(ws, rec: BackendConn) -> None:
        for _ in range(after_messages):
            msg = await ws.recv()
            rec.messages.append(msg)
            await ws.send(msg)
        await ws.close(code, reason)
    return handler


def reject_request(status: int, body: bytes = b"rejected by backend\n"):
    """A process_request hook (websockets 10.4) that refuses the handshake."""
    def process_request(path, request_headers):
        return (http.HTTPStatus(status), [("Content-Type", "text/plain"), ("X-Backend-Reject", str(status))],
                body)
    return process_request


class Backend:
    """A websockets server on 127.0.0.1, port chosen by the kernel, run in the current
    event loop. Every connection's view is recorded in `conns`; every handshake request
    that reached the server (including rejected ones) in `requests`.

    compression: "deflate" (permessage-deflate offered/accepted) or None.
    """

    def __init__(self, handler: Handler = echo_handler, *, subprotocols=None,
                 compression: Optional[str] = "deflate", process_request=None,
                 max_size: Optional[int] = 64 * 1024 * 1024, close_wait: float = 30.0,
                 **serve_kwargs):
        self.handler = handler
        self.subprotocols = subprotocols
        self.compression = compression
        self.user_process_request = process_request
        self.max_size = max_size
        self.close_wait = close_wait
        self.serve_kwargs = serve_kwargs
        self.conns: list[BackendConn] = []
        self.requests: list[tuple[str, list]] = []
        self.server = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _process_request(self, path, request_headers):
        self.requests.append((path, list(request_headers.raw_items())))
        if self.user_process_request is not None:
            return self.user_process_request(path, request_headers)
        return None

    async def _handle(self, ws) -> None:
        rec = BackendConn(path=ws.path, request_headers=list(ws.request_headers.raw_items()),
                          subprotocol=ws.subprotocol, extensions=list(ws.extensions))
        self.conns.append(rec)
        try:
            await self.handler(ws, rec)
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # recorded; the test decides whether it matters
            rec.error = e
        finally:
            try:
                await asyncio.wait_for(ws.wait_closed(), self.close_wait)
            except asyncio.TimeoutError:
                rec.error = rec.error or AssertionError("backend connection never closed")
            rec.close_code = ws.close_code
            rec.close_reason = ws.close_reason
            rec.done.set()

    async def __aenter__(self) -> "Backend":
        self.server = await websockets.serve(
            self._handle, "127.0.0.1", 0, subprotocols=self.subprotocols,
            compression=self.compression, process_request=self._process_request,
            max_size=self.max_size, ping_interval=None, **self.serve_kwargs)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 15)
        except asyncio.TimeoutError:
            pass

    async def wait_conns(self, n: int, timeout: float = 10.0) -> list:
        await wait_until(lambda: len(self.conns) >= n, timeout,
                         f"{n} backend connection(s) (have {len(self.conns)})")
        return self.conns

    async def wait_done(self, rec: BackendConn, timeout: float = 15.0) -> BackendConn:
        try:
            await asyncio.wait_for(rec.done.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"backend handler did not finish within {timeout}s")
        return rec


class SilentServer:
    """Accepts TCP on 127.0.0.1 and reads, but never answers (for 504 tests). With
    `reply`, answers each request head with those bytes instead (a scripted backend),
    then closes if `close_after_reply`."""

    def __init__(self, reply: Optional[bytes] = None, close_after_reply: bool = False):
        self.reply = reply
        self.close_after_reply = close_after_reply
        self.accepted = 0
        self.peer_closed = 0   # connections the gateway closed (EOF or reset seen)
        self.received = b""
        self._writers = []

    async def _on_conn(self, reader, writer):
        self.accepted += 1
        self._writers.append(writer)
        deadline = time.monotonic() + 60
        head = b""
        try:
            while time.monotonic() < deadline:
                data = await asyncio.wait_for(reader.read(65536), 60)
                if not data:
                    self.peer_closed += 1
                    break
                self.received += data
                head += data
                if self.reply is not None and b"\r\n\r\n" in head:
                    writer.write(self.reply)
                    await writer.drain()
                    head = b""
                    if self.close_after_reply:
                        writer.close()
                        break
        except ConnectionError:
            self.peer_closed += 1
        except asyncio.TimeoutError:
            pass

    async def __aenter__(self) -> "SilentServer":
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aexit__(self, *exc) -> None:
        for w in self._writers:
            w.close()
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 10)
        except asyncio.TimeoutError:
            pass


def ws_connect(port: int, path: str = "/echo", host: str = "127.0.0.1", **kwargs):
    """websockets.connect to the gateway with test-friendly defaults (no keepalive pings,
    64 MiB messages, generous open timeout)."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", 64 * 1024 * 1024)
    kwargs.setdefault("open_timeout", OPEN_TIMEOUT)
    kwargs.setdefault("close_timeout", 10)
    return websockets.connect(f"ws://{netloc}{path}", **kwargs)


# ---------------------------------------------------------------------------------
# Raw sockets: HTTP exchanges and hand-made WebSocket frames
# ---------------------------------------------------------------------------------

@dataclasses.dataclass
class HttpResponse:
    status: Optional[int]
    reason: str
    headers: list          # [(name, value)]
    body: bytes
    raw: bytes
    closed: bool           # the peer closed (EOF or reset) before our deadline
    reset: bool            # ... by a reset
    elapsed: float         # seconds from connect to close/deadline

    def header(self, name: str) -> Optional[str]:
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def parse_response_head(raw: bytes):
    """(status, reason, headers, head_length) or None if the head is incomplete."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = raw[:end].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise AssertionError(f"bad status line {lines[0]!r}")
    headers = []
    for ln in lines[1:]:
        name, sep, value = ln.partition(":")
        if not sep:
            raise AssertionError(f"bad response header line {ln!r}")
        headers.append((name.strip(), value.strip()))
    return int(m.group(1)), m.group(2) or "", headers, end + 4


class RawConn:
    """A non-blocking TCP socket driven by the event loop; reads only when asked."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, host: str, port: int, *, rcvbuf: Optional[int] = None,
                   timeout: float = 10.0) -> "RawConn":
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    async def send(self, data: bytes, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.loop.sock_sendall(self.sock, data), timeout)

    async def recv(self, timeout: float, n: int = 65536) -> Optional[bytes]:
        """Bytes, b"" at EOF (or reset), None on timeout."""
        try:
            return await asyncio.wait_for(self.loop.sock_recv(self.sock, n), timeout)
        except asyncio.TimeoutError:
            return None
        except ConnectionResetError:
            self.was_reset = True
            return b""

    async def read_until_eof(self, timeout: float, limit: int = 1 << 20):
        """(data, closed) reading until EOF/reset or the deadline."""
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) <= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                return data, False
            chunk = await self.recv(left)
            if chunk is None:
                return data, False
            if chunk == b"":
                return data, True
            data += chunk
        return data, False

    def close(self) -> None:
        self.sock.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()


async def http_exchange(host: str, port: int, request: bytes, *, timeout: float = 10.0,
                        pieces: Optional[list] = None) -> HttpResponse:
    """Sends `request` (or, if given, each of `pieces` in turn), then reads until the
    peer closes or `timeout` passes, and parses what came back."""
    start = time.monotonic()
    conn = await RawConn.open(host, port)
    reset = False
    try:
        try:
            for piece in (pieces if pieces is not None else [request]):
                await conn.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            reset = True  # the gateway may answer and close before reading everything
        data, closed = await conn.read_until_eof(max(0.1, timeout - (time.monotonic() - start)))
        reset = reset or getattr(conn, "was_reset", False)
    finally:
        conn.close()
    return response_from(data, closed, time.monotonic() - start, reset)


def make_key(raw16: Optional[bytes] = None) -> str:
    return base64.b64encode(raw16 or os.urandom(16)).decode()


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


async def start_scripted_upgrade_backend(case, after_101) -> tuple:
    """A backend that answers the WebSocket upgrade by hand (101 with the right accept
    value), then runs after_101(reader, writer, seen). Returns (port, seen): `seen` is the
    dict after_101 records in, plus "error" when the exchange failed. Closed at `case`'s
    cleanup."""
    seen = {}

    async def on_conn(reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            key = [ln.split(b":", 1)[1].strip().decode() for ln in head.split(b"\r\n")
                   if ln.lower().startswith(b"sec-websocket-key:")][0]
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                         + accept_for(key).encode() + b"\r\n\r\n")
            await writer.drain()
            await after_101(reader, writer, seen)
        except (asyncio.TimeoutError, ConnectionError, IndexError,
                asyncio.IncompleteReadError) as e:
            seen["error"] = repr(e)
        finally:
            writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    case.addAsyncCleanup(server.wait_closed)
    case.addCleanup(server.close)
    return server.sockets[0].getsockname()[1], seen


def upgrade_request(path: str = "/echo", host: str = "127.0.0.1", *, method: str = "GET",
                    key: Optional[str] = None, version: Optional[str] = "13",
                    upgrade: Optional[str] = "websocket", connection: Optional[str] = "Upgrade",
                    extra: Iterable[tuple[str, str]] = (), http_version: str = "HTTP/1.1",
                    omit: Iterable[str] = ()) -> bytes:
    """A WebSocket opening handshake request; any standard header can be changed,
    left out (None or listed in `omit`) or joined by `extra` headers."""
    omit = {o.lower() for o in omit}
    hdrs = [("Host", host), ("Upgrade", upgrade), ("Connection", connection),
            ("Sec-WebSocket-Key", key if key is not None else make_key()),
            ("Sec-WebSocket-Version", version)]
    lines = [f"{method} {path} {http_version}"]
    for name, value in list(hdrs) + list(extra):
        if value is None or name.lower() in omit:
            continue
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def encode_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True,
                 rsv: int = 0, mask_key: Optional[bytes] = None) -> bytes:
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key or os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        _mask_fast(payload, key)
    return head + key + masked


def _mask_fast(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = int.from_bytes((key * ((n + 3) // 4))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


@dataclasses.dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> Optional[int]:
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]


class RawWebSocket:
    """A hand-driven WebSocket client over RawConn, for input a library will not send
    and for clients that deliberately do not read."""

    def __init__(self, conn: RawConn):
        self.conn = conn
        self.buf = b""
        self.response: Optional[HttpResponse] = None
        self.eof = False

    @classmethod
    async def connect(cls, host: str, port: int, path: str = "/echo", *,
                      rcvbuf: Optional[int] = None, extra=(), request: Optional[bytes] = None,
                      timeout: float = OPEN_TIMEOUT, expect_status: int = 101) -> "RawWebSocket":
        conn = await RawConn.open(host, port, rcvbuf=rcvbuf)
        self = cls(conn)
        try:
            key = make_key()
            req = request or upgrade_request(path, f"{host}:{port}" if ":" not in host
                                             else f"[{host}]:{port}", key=key, extra=extra)
            await conn.send(req)
            deadline = time.monotonic() + timeout
            head = None
            while head is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no handshake response within {timeout}s; got "
                                         f"{self.buf[:500]!r}")
                chunk = await conn.recv(left)
                if chunk is None:
                    continue
                if chunk == b"":
                    raise AssertionError(f"connection closed during handshake; got "
                                         f"{self.buf[:500]!r}")
                self.buf += chunk
                if len(self.buf) > 65536:
                    raise AssertionError("handshake response head over 64 KiB")
                head = parse_response_head(self.buf)
            status, reason, headers, hlen = head
            self.response = HttpResponse(status, reason, headers, b"", self.buf[:hlen],
                                         False, False, 0.0)
            self.buf = self.buf[hlen:]
            if status != expect_status:
                raise AssertionError(f"handshake answered {status} {reason}, expected "
                                     f"{expect_status}: {self.response.raw!r}")
            if status == 101 and request is None:
                got = self.response.header("Sec-WebSocket-Accept")
                if got != accept_for(key):
                    raise AssertionError(f"bad Sec-WebSocket-Accept {got!r}")
        except BaseException:
            conn.close()
            raise
        return self

    async def send_frame(self, opcode: int, payload: bytes = b"", **kw) -> None:
        await self.conn.send(encode_frame(opcode, payload, **kw))

    async def send_raw(self, data: bytes) -> None:
        await self.conn.send(data)

    def _parse_one(self) -> Optional[Frame]:
        b = self.buf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", b[2:4])[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", b[2:10])[0]
            pos = 10
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            if len(b) < pos + 4:
                return None
            key = b[pos:pos + 4]
            pos += 4
        if len(b) < pos + n:
            return None
        payload = b[pos:pos + n]
        if masked:
            payload = _mask_fast(payload, key) if n else b""
        self.buf = b[pos + n:]
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)

    async def recv_frame(self, timeout: float = 10.0) -> Optional[Frame]:
        """The next frame; None at EOF; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parse_one()
            if frame is not None:
                return frame
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no complete frame within {timeout}s "
                                     f"(buffered {len(self.buf)} bytes)")
            chunk = await self.conn.recv(left, 1 << 20)
            if chunk is None:
                continue
            if chunk == b"":
                self.eof = True
            self.buf += chunk

    async def expect_close(self, timeout: float = 10.0, max_frames: int = 10000) -> Frame:
        """Reads frames until a Close frame; returns it. Fails on EOF or timeout."""
        deadline = time.monotonic() + timeout
        for _ in range(max_frames):
            frame = await self.recv_frame(max(0.01, deadline - time.monotonic()))
            if frame is None:
                raise AssertionError("connection closed without a Close frame")
            if frame.opcode == OP_CLOSE:
                return frame
        raise AssertionError(f"no Close frame among {max_frames} frames")

    async def wait_eof(self, timeout: float = 10.0) -> bool:
        """True if the peer closes the TCP connection within timeout (data discarded)."""
        if self.eof:
            return True
        _, closed = await self.conn.read_until_eof(timeout, limit=1 << 30)
        self.eof = closed
        return closed

    def close(self) -> None:
        self.conn.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------
# Assertions shared by several files
# ---------------------------------------------------------------------------------

def assert_error_response(tc, resp: HttpResponse, status: int, what: str = "") -> None:
    """An error answer: expected status, a short text body giving the reason,
    `Connection: close`, and the connection closed after it."""
    label = f"{what}: " if what else ""
    tc.assertEqual(resp.status, status, f"{label}expected {status}, got {resp.raw[:300]!r}")
    conn_hdr = ",".join(resp.header_all("Connection")).lower()
    tc.assertIn("close", [t.strip() for t in conn_hdr.split(",")],
                f"{label}no 'Connection: close' in {resp.raw[:300]!r}")
    body = resp.body
    cl = resp.header("Content-Length")
    if cl is not None:
        tc.assertEqual(int(cl), len(body), f"{label}Content-Length vs body {resp.raw[:300]!r}")
    tc.assertTrue(body.strip(), f"{label}empty body; want a short reason: {resp.raw[:300]!r}")
    tc.assertLess(len(body), 1024, f"{label}error body should be short")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        tc.fail(f"{label}error body is not text: {body[:100]!r}")
    tc.assertTrue(resp.closed, f"{label}connection not closed after the {status} response")


def response_from(data: bytes, closed: bool, elapsed: float, reset: bool = False) -> HttpResponse:
    head = parse_response_head(data)
    if head is None:
        return HttpResponse(None, "", [], b"", data, closed, reset, elapsed)
    status, reason, headers, hlen = head
    return HttpResponse(status, reason, headers, data[hlen:], data, closed, reset, elapsed)


class GatewayCase(unittest.IsolatedAsyncioTestCase):
    """Base for the async tests: starts backends and gateways whose cleanup is
    registered at once (gateway first, then the backends it uses)."""

    async def asyncSetUp(self):
        require_wsgate(self)
        # IsolatedAsyncioTestCase runs the loop in debug mode; large messages make it
        # report "slow" callbacks that are expected here.
        asyncio.get_running_loop().slow_callback_duration = 10.0

    def _body_ok(self) -> bool:
        outcome = getattr(self, "_outcome", None)
        return bool(getattr(outcome, "success", True))

    async def start_backend(self, *args, **kwargs) -> Backend:
        backend = Backend(*args, **kwargs)
        await backend.__aenter__()
        self.addAsyncCleanup(backend.__aexit__, None, None, None)
        return backend

    async def start_gateway(self, config_text: str, **kwargs) -> Gateway:
        gw = Gateway(config_text, **kwargs)
        await gw.start_async()
        self.addAsyncCleanup(self._stop_gateway, gw)
        return gw

    async def _stop_gateway(self, gw: Gateway) -> None:
        await gw.stop_async(body_failed=not self._body_ok())


def sanitizer_free(text: str) -> bool:
    return not any(m in text for m in SANITIZER_MARKERS)


def main() -> None:
    unittest.main(verbosity=2)


# ---------------------------------------------------------------------------------
# TLS: a throwaway PKI made with the openssl CLI at test time, config text with
# [listener.tls] / [upstream.tls], and openssl s_client / Python ssl clients
# ---------------------------------------------------------------------------------

OPENSSL_BIN = os.environ.get("WSGATE_OPENSSL") or "/usr/bin/openssl"
TLS_TOOL_TIMEOUT = 30.0   # any single openssl / curl run

_OPENSSL_CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ca ]
default_ca = testca
[ testca ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/issued
serial = {dir}/serial
default_md = sha256
policy = policy_any
copy_extensions = none
unique_subject = no
[ policy_any ]
commonName = supplied
organizationName = optional
"""


@dataclasses.dataclass
class CertFiles:
    """A certificate and its key, as written by ThrowawayPki."""
    cert: str
    key: str
    serial: int
    subject: str      # "/CN=a.test/O=..." as given to openssl
    key_type: str     # "rsa" or "ec"


def run_tool(args: list, *, input: Optional[bytes] = None, timeout: float = TLS_TOOL_TIMEOUT,
             check: bool = True, cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """Runs a command with a deadline; output as text (latin-1, never fails to decode)."""
    proc = subprocess.run(args, input=input if input is not None else b"", capture_output=True,
                          timeout=timeout, cwd=cwd)
    proc.stdout = proc.stdout.decode("latin-1")
    proc.stderr = proc.stderr.decode("latin-1")
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited with {proc.returncode}:\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


class ThrowawayPki:
    """Certificate authorities and leaf certificates, all generated now by the openssl
    CLI into `directory` (never committed keys). Serial numbers are unique per PKI."""

    def __init__(self, directory: str):
        self.dir = directory
        os.makedirs(os.path.join(self.dir, "issued"), exist_ok=True)
        self.cnf = os.path.join(self.dir, "openssl.cnf")
        with open(self.cnf, "w", encoding="ascii") as f:
            f.write(_OPENSSL_CNF.format(dir=self.dir))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("7000\n")
        self._next_serial = 0x1000

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _serial(self) -> int:
        self._next_serial += 1
        return self._next_serial

    def _key(self, name: str, key_type: str) -> str:
        key = self.path(name + ".key")
        if key_type == "rsa":
            args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        elif key_type == "ec":
            args = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        else:
            raise ValueError(key_type)
        run_tool([OPENSSL_BIN, "genpkey", *args, "-out", key])
        return key

    def ca(self, name: str, cn: Optional[str] = None, key_type: str = "rsa") -> CertFiles:
        key = self._key(name, key_type)
        cert = self.path(name + ".pem")
        serial = self._serial()
        subject = f"/CN={cn or name + ' test CA'}/O=wsgate tests"
        run_tool([OPENSSL_BIN, "req", "-x509", "-config", self.cnf, "-new", "-key", key,
                  "-out", cert, "-days", "30", "-subj", subject, "-extensions", "v3_ca",
                  "-set_serial", str(serial)])
        return CertFiles(cert, key, serial, subject, key_type)

    def _extfile(self, name: str, names: Iterable[str], usage: str) -> str:
        sans = []
        for n in names:
            sans.append(("IP:" if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:]*", n)
                         else "DNS:") + n)
        eku = {"server": "serverAuth", "client": "clientAuth"}[usage]
        ext = self.path(name + ".ext")
        with open(ext, "w", encoding="ascii") as f:
            f.write("basicConstraints = CA:FALSE\n"
                    f"extendedKeyUsage = {eku}\n"
                    "subjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid\n")
            if sans:
                f.write(f"subjectAltName = {', '.join(sans)}\n")
        return ext

    def leaf(self, name: str, ca: CertFiles, names: Iterable[str] = (), *,
             cn: Optional[str] = None, key_type: str = "rsa", usage: str = "server",
             org: str = "wsgate tests", key: Optional[str] = None) -> CertFiles:
        """A leaf signed by `ca` for `names` (SANs; DNS names or IPs), CN = cn or the
        first name. `key` reuses an existing key file instead of making one."""
        names = list(names)
        key = key or self._key(name, key_type)
        csr, cert = self.path(name + ".csr"), self.path(name + ".pem")
        subject = f"/CN={cn or (names[0] if names else name)}/O={org}"
        serial = self._serial()
        run_tool([OPENSSL_BIN, "req", "-new", "-config", self.cnf, "-key", key, "-subj",
                  subject, "-out", csr])
        run_tool([OPENSSL_BIN, "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
                  "-set_serial", str(serial), "-days", "30", "-sha256",
                  "-extfile", self._extfile(name, names, usage), "-out", cert])
        return CertFiles(cert, key, serial, subject, key_type)

    def expired_leaf(self, name: str, ca: CertFiles, names: Iterable[str],
                     key_type: str = "rsa") -> CertFiles:
        """A leaf valid only in January 2020. OpenSSL 3.0's `x509 -req` cannot backdate,
        so this goes through `openssl ca -startdate/-enddate`."""
        names = list(names)
        key = self._key(name, key_type)
        csr, cert = self.path(name + ".csr"), self.path(name + ".pem")
        subject = f"/CN={names[0]}/O=wsgate tests"
        run_tool([OPENSSL_BIN, "req", "-new", "-config", self.cnf, "-key", key, "-subj",
                  subject, "-out", csr])
        run_tool([OPENSSL_BIN, "ca", "-batch", "-config", self.cnf, "-cert", ca.cert,
                  "-keyfile", ca.key, "-startdate", "20200101000000Z",
                  "-enddate", "20200201000000Z", "-extfile",
                  self._extfile(name, names, "server"), "-in", csr, "-out", cert, "-notext"])
        serial = int(run_tool([OPENSSL_BIN, "x509", "-in", cert, "-noout", "-serial"])
                     .stdout.strip().split("=")[1], 16)
        return CertFiles(cert, key, serial, subject, key_type)


def cert_info(pem_or_path: str) -> dict:
    """serial (int), subject, issuer, key_type ("rsa"/"ec"), sans ([str]) of a PEM
    certificate given as text or as a file path."""
    if pem_or_path.lstrip().startswith("-----BEGIN"):
        proc = run_tool([OPENSSL_BIN, "x509", "-noout", "-text", "-serial", "-subject",
                         "-issuer", "-nameopt", "compat"], input=pem_or_path.encode("ascii"))
    else:
        proc = run_tool([OPENSSL_BIN, "x509", "-in", pem_or_path, "-noout", "-text", "-serial",
                         "-subject", "-issuer", "-nameopt", "compat"])
    out = proc.stdout
    info: dict = {"sans": []}
    m = re.search(r"^serial=([0-9A-Fa-f]+)$", out, re.M)
    info["serial"] = int(m.group(1), 16) if m else None
    m = re.search(r"^subject=(.*)$", out, re.M)
    info["subject"] = m.group(1).strip() if m else None
    m = re.search(r"^issuer=(.*)$", out, re.M)
    info["issuer"] = m.group(1).strip() if m else None
    if "id-ecPublicKey" in out:
        info["key_type"] = "ec"
    elif "rsaEncryption" in out:
        info["key_type"] = "rsa"
    else:
        info["key_type"] = None
    m = re.search(r"Subject Alternative Name:.*?\n\s*(.+)", out)
    if m:
        info["sans"] = [s.strip().split(":", 1)[1] for s in m.group(1).split(",")]
    return info


_PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclasses.dataclass
class SClientResult:
    rc: int
    out: str          # stdout + stderr
    elapsed: float

    @property
    def handshake_done(self) -> bool:
        return bool(re.search(r"^(New|Reused), TLSv1\.[0-3]", self.out, re.M))

    @property
    def reused(self) -> bool:
        return bool(re.search(r"^Reused, ", self.out, re.M))

    @property
    def protocol(self) -> Optional[str]:
        """The version from s_client's "New, TLSv1.3, Cipher is ..." line."""
        m = re.search(r"^(?:New|Reused), (TLSv1\.[0-3]), Cipher is (?!\(NONE\))", self.out, re.M)
        return m.group(1) if m else None

    @property
    def alpn(self) -> Optional[str]:
        """The ALPN protocol chosen, "" if none was negotiated, None if not reported."""
        if re.search(r"^No ALPN negotiated", self.out, re.M):
            return ""
        m = re.search(r"^ALPN protocol: (\S+)", self.out, re.M)
        return m.group(1) if m else None

    @property
    def verify_code(self) -> Optional[int]:
        m = re.search(r"Verify return code: (\d+)", self.out)
        return int(m.group(1)) if m else None

    def peer_cert(self) -> dict:
        start = self.out.find("Server certificate\n")
        m = _PEM_RE.search(self.out, start) if start >= 0 else None
        if not m:
            raise AssertionError(f"s_client printed no server certificate:\n{self.out[-3000:]}")
        return cert_info(m.group(0))


def s_client(port: int, *, servername: Optional[str] = None, ca: Optional[str] = None,
             args: Iterable[str] = (), send: Optional[bytes] = None,
             timeout: float = TLS_TOOL_TIMEOUT) -> SClientResult:
    """`openssl s_client` to 127.0.0.1:port. With `send`, writes those bytes after the
    handshake and keeps reading until the server closes (-ign_eof); without it, stdin is
    empty and s_client ends right after the handshake."""
    cmd = [OPENSSL_BIN, "s_client", "-connect", f"127.0.0.1:{port}"]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    if ca:
        cmd += ["-CAfile", ca]
    if send is not None:
        cmd.append("-ign_eof")
    cmd += list(args)
    start = time.monotonic()
    proc = subprocess.run(cmd, input=send or b"", capture_output=True, timeout=timeout)
    out = proc.stdout.decode("latin-1") + "\n" + proc.stderr.decode("latin-1")
    return SClientResult(proc.returncode, out, time.monotonic() - start)


async def s_client_async(port: int, **kwargs) -> SClientResult:
    """s_client in a thread, so backends in the test's event loop keep running."""
    return await asyncio.to_thread(s_client, port, **kwargs)


async def run_tool_async(args: list, **kwargs) -> subprocess.CompletedProcess:
    """run_tool in a thread, so backends in the test's event loop keep running."""
    return await asyncio.to_thread(run_tool, args, **kwargs)


def toml_inline(v: Any) -> str:
    """toml_value plus inline tables ({k = v, ...}) for dicts, at any depth."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_inline(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_inline(x) for x in v) + "]"
    return toml_value(v)


def tls_config(listen: str, upstreams: dict, routes: list, *,
               listener_tls: Optional[dict] = None, upstream_tls: Optional[dict] = None,
               listener: Optional[dict] = None, workers: int = 2,
               drain_timeout: str = "10s", access_log: str = "-") -> str:
    """Like make_config, with a [listener.tls] table (`listener_tls`, None = plain) and
    per-upstream [upstream.tls] tables (`upstream_tls` = {upstream name: dict})."""
    text = (f"workers = {workers}\n"
            f"drain_timeout = {toml_value(drain_timeout)}\n"
            f"access_log = {toml_value(access_log)}\n\n")
    text += toml_table("listener", {"address": listen, **(listener or {})})
    if listener_tls is not None:
        text += "[listener.tls]\n"
        text += "".join(f"{k} = {toml_inline(v)}\n" for k, v in listener_tls.items())
    text += "\n"
    for name, servers in upstreams.items():
        text += toml_table("upstream", {"name": name, "servers": servers})
        if upstream_tls and name in upstream_tls:
            text += "[upstream.tls]\n"
            text += "".join(f"{k} = {toml_inline(v)}\n" for k, v in upstream_tls[name].items())
        text += "\n"
    for route in routes:
        text += toml_table("route", route) + "\n"
    return text


def client_ssl_context(ca: Optional[str] = None, cert: Optional[str] = None,
                       key: Optional[str] = None, *, verify: bool = True,
                       min_version=None, max_version=None):
    """A Python ssl client context trusting `ca` (and presenting cert/key if given)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def wss_connect(port: int, ssl_ctx, server_hostname: str, path: str = "/echo", **kwargs):
    """websockets.connect to wss://server_hostname:port/path, dialing 127.0.0.1."""
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", 64 * 1024 * 1024)
    kwargs.setdefault("open_timeout", OPEN_TIMEOUT)
    kwargs.setdefault("close_timeout", 10)
    return websockets.connect(f"wss://{server_hostname}:{port}{path}", host="127.0.0.1",
                              port=port, ssl=ssl_ctx, server_hostname=server_hostname, **kwargs)


def tls_failure_lines(stderr_text: str, client_port: Optional[int] = None) -> list:
    """wsgate's "TLS handshake with IP:PORT failed: reason" lines (for one client port)."""
    lines = [ln for ln in stderr_text.splitlines() if "TLS handshake with " in ln
             and " failed: " in ln]
    if client_port is not None:
        lines = [ln for ln in lines if f"TLS handshake with 127.0.0.1:{client_port} failed"
                 in ln]
    return lines


class PkiCase(GatewayCase):
    """A GatewayCase with a throwaway PKI made once per class, in a temporary folder
    removed afterwards. Subclasses make their CAs and certificates in
    make_certificates(pki) and keep them as class attributes."""

    @classmethod
    def make_certificates(cls, pki: "ThrowawayPki") -> None:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory(prefix="wsgate-tls-pki-")
        cls.make_certificates(ThrowawayPki(cls.tmp.name))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        super().tearDownClass()
