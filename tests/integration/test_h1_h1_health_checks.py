"""HTTP/1.1 client -> HTTP/1.1 backends: health checks, retries, ejection, 503.

A killed backend is marked down by the active check within interval x fall (the time
from the kill to the "is down" log line is printed) and up again after its restart; a
WebSocket check wants a real 101; retries hide a dead server from every client; passive
ejection takes a dead server out after consecutive failures; when no server is left
the client gets 503 with a reason naming each server's state.
"""

import asyncio
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import lb_helpers as lb  # noqa: E402

INTERVAL_S = 0.5
FALL = 2
RISE = 2
CHECK = {"type": "tcp", "interval": "500ms", "timeout": "300ms", "rise": RISE, "fall": FALL}
# Log polling, process scheduling and sanitizer builds: added to every time bound.
SLACK_S = 0.4


def upstreams_used(gw, since_line: int = 0) -> list:
    lines = gw.access_log_lines()[since_line:]
    return [h.parse_logfmt(ln).get("upstream") for ln in lines]


async def echo_once(port: int, text: str = "x"):
    async with h.ws_connect(port) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), 20)


class ActiveHealthCheck(h.GatewayCase):
    async def test_killed_backend_down_within_interval_x_fall_and_up_after_restart(self):
        live = await self.start_backend()
        victim = h.EchoBackendProcess()
        await victim.__aenter__()
        self.addAsyncCleanup(victim.__aexit__, None, None, None)
        gw = await self.start_gateway(lb.lb_config(
            h.free_port(), [lb.server_entry(live.address), lb.server_entry(victim.address)],
            upstream={"balancer": "round_robin"}, health_check=CHECK))
        for i in range(4):  # both serve
            self.assertEqual(await echo_once(gw.port, f"a{i}"), f"a{i}")
        await h.wait_until(lambda: victim.address in upstreams_used(gw), 10, "victim used")

        down_line = f"server {victim.address} is down"
        killed_at = time.monotonic()
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=10)
        await h.wait_until(lambda: down_line in gw.stderr_text(), 10, "the down transition")
        to_removal = time.monotonic() - killed_at
        print(f"\nhealth check: killed backend marked down {to_removal * 1000:.0f} ms after "
              f"SIGKILL (interval {INTERVAL_S * 1000:.0f} ms x fall {FALL} = "
              f"{INTERVAL_S * FALL * 1000:.0f} ms)", file=sys.stderr)
        self.assertLessEqual(to_removal, INTERVAL_S * FALL + SLACK_S, gw.stderr_text())

        # Down: every connection goes to the live server, none is even tried on the dead.
        mark = len(gw.access_log_lines())
        for i in range(10):
            self.assertEqual(await echo_once(gw.port, f"b{i}"), f"b{i}")
        await h.wait_until(lambda: len(upstreams_used(gw, mark)) >= 10, 10, "access lines")
        self.assertEqual(set(upstreams_used(gw, mark)), {live.address})
        # Retries would also hide a dead server that is still picked; but then its
        # failures would have ejected it passively (3 by default). They did not happen.
        self.assertNotIn(f"server {victim.address} ejected", gw.stderr_text())

        # Restart on the same port: up again within interval x rise.
        restarted = h.EchoBackendProcess(port=victim.port)
        await restarted.__aenter__()
        self.addAsyncCleanup(restarted.__aexit__, None, None, None)
        started_at = time.monotonic()
        up_line = f"server {victim.address} is up"
        await h.wait_until(lambda: up_line in gw.stderr_text(), 10, "the up transition")
        to_return = time.monotonic() - started_at
        print(f"health check: restarted backend up again {to_return * 1000:.0f} ms after it "
              f"listened (interval x rise = {INTERVAL_S * RISE * 1000:.0f} ms)", file=sys.stderr)
        self.assertLessEqual(to_return, INTERVAL_S * RISE + SLACK_S)
        mark = len(gw.access_log_lines())
        for i in range(6):
            self.assertEqual(await echo_once(gw.port, f"c{i}"), f"c{i}")
        await h.wait_until(lambda: victim.address in upstreams_used(gw, mark), 10,
                           "the restarted backend to get connections again")

    async def test_websocket_check_wants_101(self):
        def health_refused(path, _headers):
            return h.reject_request(403)(path, _headers) if path == "/health" else None
        ok = await self.start_backend()
        refusing = await self.start_backend(process_request=health_refused)
        gw = await self.start_gateway(lb.lb_config(
            h.free_port(), [lb.server_entry(ok.address), lb.server_entry(refusing.address)],
            health_check={**CHECK, "type": "websocket", "path": "/health"}))
        await h.wait_until(lambda: f"server {refusing.address} is down" in gw.stderr_text(),
                           10, "the refusing backend to be marked down")
        self.assertIn("answered 403 instead of 101", gw.stderr_text())
        self.assertNotIn(f"server {ok.address} is down", gw.stderr_text())
        # The probes were real handshakes on the configured path.
        self.assertTrue(any(p == "/health" for p, _ in ok.requests))
        mark = len(gw.access_log_lines())
        for i in range(6):
            self.assertEqual(await echo_once(gw.port, f"w{i}"), f"w{i}")
        await h.wait_until(lambda: len(upstreams_used(gw, mark)) >= 6, 10, "access lines")
        self.assertEqual(set(upstreams_used(gw, mark)), {ok.address})


class RetriesAndEjection(h.GatewayCase):
    async def test_retries_hide_a_dead_server(self):
        b1, b2 = await self.start_backend(), await self.start_backend()
        dead = f"127.0.0.1:{h.free_port()}"
        # No ejection, no health check: every pick of the dead server is retried.
        gw = await self.start_gateway(lb.lb_config(
            h.free_port(), [lb.server_entry(a) for a in (dead, b1.address, b2.address)],
            upstream={"balancer": "round_robin", "retries": 1, "eject_after_failures": 0}))
        results = await lb.run_bounded(60, 10, lambda i: echo_once(gw.port, f"r{i}"))
        self.assertEqual(results, [f"r{i}" for i in range(60)])
        self.assertEqual(len(b1.conns) + len(b2.conns), 60)
        self.assertNotIn(dead, upstreams_used(gw))

    async def test_consecutive_failures_eject_the_server(self):
        live = await self.start_backend()
        dead = f"127.0.0.1:{h.free_port()}"
        gw = await self.start_gateway(lb.lb_config(
            h.free_port(), [lb.server_entry(dead), lb.server_entry(live.address)],
            upstream={"balancer": "round_robin", "eject_after_failures": 2,
                      "eject_duration": "1m"}, workers=1))
        for i in range(8):
            self.assertEqual(await echo_once(gw.port, f"e{i}"), f"e{i}")
        await h.wait_until(lambda: re.search(
            rf"server {re.escape(dead)} ejected for 60000 ms after 2 consecutive failures",
            gw.stderr_text()), 10, "the ejection log line")

    async def test_no_server_left_503_with_reason(self):
        dead1, dead2 = (f"127.0.0.1:{h.free_port()}" for _ in range(2))
        gw = await self.start_gateway(lb.lb_config(
            h.free_port(), [lb.server_entry(dead1), lb.server_entry(dead2)],
            health_check={**CHECK, "fall": 1}))
        await h.wait_until(lambda: gw.stderr_text().count(" is down (health check") >= 2, 10,
                           "both servers down")
        resp = await h.http_exchange("127.0.0.1", gw.port, h.upgrade_request("/echo", "127.0.0.1"),
                                     timeout=20)
        h.assert_error_response(self, resp, 503, "no server available")
        self.assertIn(b"no server of upstream echo can take the connection", resp.body)
        self.assertIn(f"{dead1} down (health check)".encode(), resp.body)


if __name__ == "__main__":
    h.main()
