"""Helpers for the load-balancing integration tests (test_h1_h1_balancing.py,
test_h1_h1_health_checks.py): config text with pool options, and counting where
connections landed. Not a test itself (ctest runs test_*.py only)."""

from __future__ import annotations

import asyncio
from typing import Optional

import harness as h


def server_entry(address: str, weight: int = 1, **options) -> str:
    """One servers-array element: a plain string, or an inline table with options."""
    if weight == 1 and not options:
        return h.toml_value(address)
    fields = {"address": address, "weight": weight, **options}
    return "{" + ", ".join(f"{k} = {h.toml_value(v)}" for k, v in fields.items()) + "}"


def lb_config(gw_port: int, servers: list[str], *, upstream: Optional[dict] = None,
              health_check: Optional[dict] = None, workers: int = 2,
              route: Optional[dict] = None) -> str:
    """One listener, one upstream "echo" whose `servers` are already TOML (server_entry),
    one route "/echo". `upstream` adds keys to [[upstream]]; `health_check` adds an
    [upstream.health_check] table."""
    text = (f"workers = {workers}\ndrain_timeout = \"5s\"\naccess_log = \"-\"\n\n"
            f"[[listener]]\naddress = \"127.0.0.1:{gw_port}\"\n\n"
            f"[[upstream]]\nname = \"echo\"\nservers = [{', '.join(servers)}]\n")
    for k, v in (upstream or {}).items():
        text += f"{k} = {h.toml_value(v)}\n"
    if health_check is not None:
        text += "[upstream.health_check]\n"
        for k, v in health_check.items():
            text += f"{k} = {h.toml_value(v)}\n"
    text += "\n" + h.toml_table("route", {"path": "/echo", "upstream": "echo", **(route or {})})
    return text


async def run_bounded(n: int, concurrency: int, make_one) -> list:
    """Runs make_one(i) for i in range(n), at most `concurrency` at a time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            return await make_one(i)
    return await asyncio.gather(*(one(i) for i in range(n)))


def shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [100.0 * c / total for c in counts] if total else [0.0] * len(counts)
