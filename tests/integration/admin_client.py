"""Helpers for the admin endpoint tests (test_admin_*.py): a config with an [admin]
table, an HTTP client for the admin port that never blocks the test's event loop, and
a parser for the Prometheus text exposition.

Same rules as harness.py: 127.0.0.1 only, every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from typing import Optional

import harness as h

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def with_admin(config_text: str, admin_port: int, token: Optional[str] = None) -> str:
    text = config_text + f'\n[admin]\naddress = "127.0.0.1:{admin_port}"\n'
    if token is not None:
        text += f"token = {h.toml_value(token)}\n"
    return text


def parse_exposition(text: str) -> list[tuple[str, dict, float]]:
    """[(name, {label: value}, value)] for every sample line; fails on a malformed line."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError(f"malformed exposition line: {line!r}")
        labels = dict(_LABEL_RE.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


class Metrics:
    """One scrape, queryable by name and a subset of labels (summing the matches)."""

    def __init__(self, text: str):
        self.text = text
        self.samples = parse_exposition(text)

    def value(self, name: str, **labels) -> float:
        return sum(v for n, ls, v in self.samples
                   if n == name and all(ls.get(k) == str(x) for k, x in labels.items()))

    def has(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.samples)


class Admin:
    def __init__(self, port: int, token: Optional[str] = None):
        self.port = port
        self.token = token

    def get_sync(self, path: str, token: Optional[str] = "default",
                 timeout: float = 10.0, method: str = "GET") -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {}
            token = self.token if token == "default" else token
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            if method == "POST":
                headers["X-Wsgate-Admin"] = "1"  # writes without a write token need it
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    async def get(self, path: str, token: Optional[str] = "default") -> tuple[int, dict, bytes]:
        # In a thread: the test's backends run on this event loop and must keep running.
        return await asyncio.to_thread(self.get_sync, path, token)

    async def post(self, path: str, token: Optional[str] = "default") -> tuple[int, dict, bytes]:
        return await asyncio.to_thread(self.get_sync, path, token, 10.0, "POST")

    async def metrics(self) -> Metrics:
        status, headers, body = await self.get("/metrics")
        if status != 200:
            raise AssertionError(f"/metrics answered {status}: {body[:300]!r}")
        if not headers.get("content-type", "").startswith("text/plain; version=0.0.4"):
            raise AssertionError(f"/metrics content type {headers.get('content-type')!r}")
        return Metrics(body.decode())

    async def connections(self, query: str = "") -> dict:
        status, _, body = await self.get("/connections" + (f"?{query}" if query else ""))
        if status != 200:
            raise AssertionError(f"/connections answered {status}: {body[:300]!r}")
        return json.loads(body)

    async def wait_up(self, timeout: float = h.STARTUP_DEADLINE) -> None:
        def up():
            try:
                return self.get_sync("/healthz", timeout=1.0)[0] == 200
            except OSError:
                return False
        deadline = asyncio.get_running_loop().time() + timeout
        while not await asyncio.to_thread(up):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"admin port {self.port} did not answer /healthz")
            await asyncio.sleep(h.POLL_INTERVAL)

    async def wait_metrics(self, predicate, what: str, timeout: float = 10.0) -> Metrics:
        """Scrapes until predicate(metrics) is true; returns that scrape."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            m = await self.metrics()
            if predicate(m):
                return m
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(h.POLL_INTERVAL)
