"""Helpers for the CONNECT tunnel tests: config with [connect], a python http.server
target in a subprocess, curl through the proxy, and a raw CONNECT over a socket."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CURL = "/usr/bin/curl"


def connect_config(gw_port: int, allow: list, *, users: Optional[list] = None,
                   listener_connect: bool = True, extra: str = "", listener: Optional[dict] = None,
                   connect_keys: Optional[dict] = None) -> str:
    """One listener with connect = true, a placeholder upstream/route (the config needs
    one), and [connect] with `allow` rules ({host|cidr, ports}) and `users` (name, hash)."""
    keys = {"connect": listener_connect, **(listener or {})}
    text = h.simple_config(gw_port, ["127.0.0.1:9"], listener=keys)
    text += "[connect]\n"
    for k, v in (connect_keys or {}).items():
        text += f"{k} = {h.toml_value(v)}\n"
    for rule in allow:
        text += h.toml_table("connect.allow", rule)
    for name, pw_hash in users or []:
        text += h.toml_table("connect.user", {"name": name, "password_hash": pw_hash})
    return text + extra


def hash_password(password: str, iterations: int = 1000) -> str:
    out = subprocess.run([h.WSGATE_BIN, "--hash-password", str(iterations)],
                         input=(password + "\n").encode(), capture_output=True, timeout=30,
                         check=True)
    return out.stdout.decode().strip()


class HttpServer:
    """python3 -m http.server on 127.0.0.1 serving a temp folder; stopped by PID."""

    def __init__(self, files: dict):
        self._tmp = tempfile.TemporaryDirectory(prefix="wsgate-http-")
        for name, data in files.items():
            with open(os.path.join(self._tmp.name, name), "wb") as f:
                f.write(data)
        self.port = h.free_port()
        self.proc: Optional[subprocess.Popen] = None

    async def __aenter__(self) -> "HttpServer":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
             "--directory", self._tmp.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await h.wait_until(lambda: h.tcp_accepts("127.0.0.1", self.port), 10,
                           "http.server to listen")
        return self

    async def __aexit__(self, *exc) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._tmp.cleanup()


async def curl(*args: str, timeout: float = 20) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of curl with `args`."""
    proc = await asyncio.create_subprocess_exec(
        CURL, "-sS", "--max-time", str(int(timeout)), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout + 5)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out, err


async def raw_connect(gw_port: int, target: str, headers: str = "",
                      timeout: float = 10.0,
                      source: Optional[str] = None) -> tuple[socket.socket, bytes]:
    """Opens a socket to the gateway, sends CONNECT `target`, reads the response head.
    Returns (blocking socket, head bytes); the socket is positioned after the head.
    `source`: the client's address (any of 127.0.0.0/8), e.g. to be another client."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source is not None:
        sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", gw_port)), timeout)
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{headers}\r\n".encode()
    await loop.sock_sendall(sock, request)
    head = await _read_head(sock, time.monotonic() + timeout, timeout)
    return sock, head


async def _read_head(sock: socket.socket, deadline: float, timeout: float) -> bytes:
    """Reads exactly up to the end of the response head (not a byte of what follows):
    peeks at what has arrived and takes only the head. One recv per arrival rather than
    one per byte, so 40 concurrent clients stay quick on a slow, loaded machine."""
    loop = asyncio.get_running_loop()
    seen = -1
    while True:
        try:
            data = sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            data = None
        if data is not None:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                return sock.recv(end + 4)
            if not data:  # the gateway closed before a whole head
                return b""
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no CONNECT answer within {timeout}s: {data!r}")
        if data is not None and len(data) == seen:
            # Part of a head is waiting for the rest: the socket stays readable, so wait
            # a moment instead of for readability.
            await asyncio.sleep(0.01)
            continue
        seen = len(data) if data is not None else -1
        if data is None:
            readable = loop.create_future()
            loop.add_reader(sock.fileno(),
                            lambda: readable.done() or readable.set_result(None))
            try:
                await asyncio.wait_for(readable, left)
            except asyncio.TimeoutError:
                pass
            finally:
                loop.remove_reader(sock.fileno())
