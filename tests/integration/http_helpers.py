"""Helpers for the HTTP forwarding tests (test_*_http_*.py): Node's http module as the
upstream (tests/integration/http_backend.js, run by PID), curl as the client, raw
requests over a socket, and the backend's own record of what reached it.

Same rules as harness.py: 127.0.0.1 only, every wait has a deadline, every process is
stopped by its PID.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from typing import Optional

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

NODE = shutil.which("node") or shutil.which("nodejs")
CURL = shutil.which("curl")
BACKEND_JS = os.path.join(h.HERE, "http_backend.js")


def require_tools(case) -> None:
    """node and curl come with scripts/install-deps.sh test; under CTest a missing one is
    a failure, by hand a skip that says why."""
    missing = [name for name, path in (("node", NODE), ("curl", CURL)) if path is None]
    if not missing:
        return
    if os.environ.get("WSGATE_BIN"):
        case.fail(f"{', '.join(missing)} not installed (scripts/install-deps.sh test)")
    case.skipTest(f"{', '.join(missing)} not installed")


class ListeningProcess:
    """A test server run as its own process that prints "listening PORT" on stdout once it
    accepts on 127.0.0.1 (a kernel-chosen port); stopped by its PID (SIGTERM, SIGKILL
    after 10 s). Subclasses give `argv()` and a `what` for messages."""

    what = "server"

    def __init__(self, prefix: str):
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.out_path = os.path.join(self._tmp.name, "out.log")

    def argv(self) -> list:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _port(self) -> int:
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError(f"{self.what} exited with {rc}: {self._read()}")
        for line in self._read().splitlines():
            if line.startswith("listening "):
                return int(line.split()[1])
        return 0

    def _read(self) -> str:
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    async def start(self):
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        self.port = await h.wait_until(self._port, 20.0, f"{self.what} to listen")
        return self

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            deadline = asyncio.get_running_loop().time() + 10
            while self.proc.poll() is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(h.POLL_INTERVAL)
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()
        self._tmp.cleanup()


class NodeBackend(ListeningProcess):
    """`node http_backend.js NAME`: an HTTP/1.1 server on a kernel-chosen port."""

    def __init__(self, name: str = "backend"):
        super().__init__("wsgate-node-")
        self.name = name
        self.what = f"node backend {name}"

    def argv(self) -> list:
        return [NODE, BACKEND_JS, self.name]

    def stats(self) -> dict:
        """{"connections": n, "requests": [[method, url], ...]} as the backend saw them."""
        with urllib.request.urlopen(f"http://{self.address}/_stats", timeout=10) as r:
            return json.loads(r.read())

    async def stats_async(self) -> dict:
        return await asyncio.to_thread(self.stats)


async def start_node_backend(case, name: str = "backend") -> NodeBackend:
    b = await NodeBackend(name).start()
    case.addAsyncCleanup(b.stop)
    return b


def random_file(directory: str, name: str, size: int) -> tuple[str, str]:
    """A file of `size` random bytes: its path and its SHA-256 (hex)."""
    path = os.path.join(directory, name)
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, hashlib.sha256(data).hexdigest()


async def access_line(gw, path: str) -> dict:
    """The gateway's access-log line (parsed) for the request to `path`."""
    return await gw.wait_access_line(lambda f: f.get("path") == path, path)


async def curl(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """curl -sS ARGS, without blocking the event loop; its output as bytes."""
    def run():
        return subprocess.run([CURL, "-sS", *args], capture_output=True, timeout=timeout)
    return await asyncio.to_thread(run)


async def raw_request(port: int, data: bytes, *, timeout: float = 10.0) -> h.HttpResponse:
    """Sends `data` on a new connection and reads until the gateway closes it."""
    return await h.http_exchange("127.0.0.1", port, data, timeout=timeout)


def split_responses(raw: bytes) -> list[tuple[int, dict, bytes]]:
    """Consecutive HTTP/1.1 responses with Content-Length or chunked bodies, in order."""
    out = []
    while raw:
        head = h.parse_response_head(raw)
        if head is None:
            break
        status, _reason, headers, n = head
        fields = {k.lower(): v for k, v in headers}
        raw = raw[n:]
        body = b""
        if "content-length" in fields:
            size = int(fields["content-length"])
            body, raw = raw[:size], raw[size:]
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line, _, raw = raw.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    _, _, raw = raw.partition(b"\r\n")
                    break
                body, raw = body + raw[:size], raw[size + 2:]
        out.append((status, fields, body))
    return out
