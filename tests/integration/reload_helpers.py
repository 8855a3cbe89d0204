"""Helpers for the configuration reload tests (test_reload_*.py): rewrite the config
file of a running gateway, trigger a reload by SIGHUP or POST /reload, and wait for
the gateway's log line that says how it went.

Same rules as harness.py: 127.0.0.1 only, every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
from typing import Optional

import harness as h

RELOADED = "configuration reloaded"
NOT_RELOADED = "configuration not reloaded"
LOG_DEADLINE = 10.0


def write_config(gw: h.Gateway, text: str) -> None:
    # Written whole, then renamed over the file: a reload never reads half a file.
    tmp = gw.config_path + ".new"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, gw.config_path)


def log_lines(gw: h.Gateway, needle: str) -> list[str]:
    return [ln for ln in gw.stderr_text().splitlines() if needle in ln]


async def sighup(gw: h.Gateway, needle: str) -> str:
    """Sends SIGHUP and returns the new log line containing `needle`."""
    before = len(log_lines(gw, needle))
    gw.send_signal(signal.SIGHUP)
    await h.wait_until(lambda: len(log_lines(gw, needle)) > before, LOG_DEADLINE,
                       f"'{needle}' in wsgate's log after SIGHUP")
    return log_lines(gw, needle)[-1]


def post_sync(port: int, path: str, token: Optional[str], method: str = "POST",
              timeout: float = 20.0) -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        # Writes without a write token need it (and a Host naming the admin listener).
        headers = {"Content-Length": "0", "X-Wsgate-Admin": "1"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return (resp.status, {k.lower(): v for k, v in resp.getheaders()},
                resp.read().decode("utf-8", "replace"))
    finally:
        conn.close()


async def post_reload(admin_port: int, token: Optional[str],
                      method: str = "POST") -> tuple[int, dict, str]:
    # In a thread: the test's backends and clients run on this event loop.
    return await asyncio.to_thread(post_sync, admin_port, "/reload", token, method)
