"""Two wsgate instances behind HAProxy in TCP mode with `send-proxy-v2`: the fleet.

One HAProxy process plays both real third-party peers:

    client -> HAProxy "fleet" (mode tcp, roundrobin, send-proxy-v2,
                               health check GET /ready on each admin port)
           -> wsgate g1 | g2 (proxy_protocol listeners, balancer "hash" on ?user=,
                              send_proxy_protocol = "v2" to the backends)
           -> HAProxy "app1" | "app2" (mode http, accept-proxy; copies the PROXY
                                       header's source into X-PP-Src)
           -> backend b1 | b2 (python3-websockets, numbered echo)

Checked: the backend sees the real client (its own source port, through both hops);
[limits] per client hold per instance, by the real client (IPv4 and IPv6 clients are
different clients though HAProxy reaches both instances from 127.0.0.1); the hash key
sends a user to the same backend through either instance; draining one instance
(SIGTERM: /ready 503, drain_delay, Close 1001 spread over drain_spread) moves its
clients to the other with no lost message. The drain test prints its figures.
"""

import asyncio
import collections
import os
import signal
import statistics
import sys
import time

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import haproxy_helpers as hp  # noqa: E402
import harness as h  # noqa: E402

HAPROXY_CFG = """\
global
    maxconn 2000
defaults
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 60s
    timeout check 1s
    retries 3
    option redispatch
frontend fleet
    mode tcp
    bind 127.0.0.1:{fleet}
{bind6}
    default_backend gateways
backend gateways
    mode tcp
    balance roundrobin
    option httpchk GET /ready
    default-server inter 100ms fall 1 rise 2
    server g1 127.0.0.1:{g1} send-proxy-v2 check port {g1_admin}
    server g2 127.0.0.1:{g2} send-proxy-v2 check port {g2_admin}
frontend app1
    mode http
    bind 127.0.0.1:{app1} accept-proxy
    http-request set-header X-PP-Src %[src]:%[src_port]
    default_backend b1
frontend app2
    mode http
    bind 127.0.0.1:{app2} accept-proxy
    http-request set-header X-PP-Src %[src]:%[src_port]
    default_backend b2
backend b1
    mode http
    server b1 {b1}
backend b2
    mode http
    server b2 {b2}
"""


def gateway_config(port, admin_port, app_ports, limits=None):
    text = h.make_config(f"127.0.0.1:{port}",
                         {"app": [f"127.0.0.1:{p}" for p in app_ports]},
                         [{"name": "app", "path": "/", "upstream": "app"}],
                         listener={"proxy_protocol": True,
                                   "proxy_protocol_from": ["127.0.0.1"]},
                         drain_timeout="15s")
    text = text.replace("servers = ", 'balancer = "hash"\nhash_key = "query:user"\n'
                        'send_proxy_protocol = "v2"\nservers = ', 1)
    text = 'drain_delay = "1s"\ndrain_spread = "2s"\n' + text
    if limits:
        text += "\n[limits]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items())
    return ac.with_admin(text, admin_port)


class NumberedEcho:
    """The backends' shared record: what each user's messages were, in arrival order,
    and which backend got them."""

    def __init__(self):
        self.received = collections.defaultdict(list)  # user -> [seq, ...]
        self.backend_of = collections.defaultdict(set)  # user -> {"b1", "b2"}

    def handler(self, name):
        async def handle(ws, rec):
            user = rec.path.split("user=", 1)[1].split("&", 1)[0]
            self.backend_of[user].add(name)
            async for msg in ws:
                u, seq = msg.split(":")
                self.received[u].append(int(seq))
                await ws.send(msg)
        return handle


class Fleet(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        if not hp.available():
            self.skipTest(f"haproxy not found at {hp.HAPROXY} (scripts/install-deps.sh test)")
        self.echo = NumberedEcho()

    async def start_fleet(self, limits=None):
        self.b1 = await self.start_backend(self.echo.handler("b1"), compression=None)
        self.b2 = await self.start_backend(self.echo.handler("b2"), compression=None)
        ports = {n: h.free_port() for n in ("g1", "g2", "g1_admin", "g2_admin")}
        ipv6 = h.ipv6_loopback_available()
        fleet6 = h.free_port("::1") if ipv6 else 0
        self.haproxy = hp.HAProxy(HAPROXY_CFG, ["fleet", "app1", "app2"],
                                  b1=self.b1.address, b2=self.b2.address,
                                  bind6=f"    bind [::1]:{fleet6}" if ipv6 else "", **ports)
        self.fleet6 = fleet6
        apps = (self.haproxy.ports["app1"], self.haproxy.ports["app2"])
        self.gws = {}
        for g in ("g1", "g2"):
            self.gws[g] = await self.start_gateway(
                gateway_config(ports[g], ports[g + "_admin"], apps, limits))
            await ac.Admin(ports[g + "_admin"]).wait_up()
        self.admins = {g: ac.Admin(ports[g + "_admin"]) for g in ("g1", "g2")}
        await self.haproxy.start()
        self.addCleanup(self.haproxy.stop)
        self.lb = self.haproxy.ports["fleet"]
        # Both gateways in rotation: HAProxy's checks of /ready passed (rise 2).
        await self.wait_both_up()

    async def wait_both_up(self):
        # Connections until each gateway has logged one: both are in HAProxy's rotation.
        seen = set()
        deadline = time.monotonic() + 20
        while seen != {"g1", "g2"} and time.monotonic() < deadline:
            try:
                async with h.ws_connect(self.lb, path="/app?user=probe") as ws:
                    port = ws.local_address[1]
                    await ws.send("probe:0")
                    await asyncio.wait_for(ws.recv(), 10)
                seen.add(await self.gateway_of(port))
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.1)
        self.assertEqual(seen, {"g1", "g2"}, "both gateways behind HAProxy")

    async def gateway_of(self, client_port, host="127.0.0.1"):
        """The gateway whose access log has this client (by its own source port)."""
        client = f"[{host}]:{client_port}" if ":" in host else f"{host}:{client_port}"

        def find():
            for name, gw in self.gws.items():
                for line in gw.access_log_lines():
                    if f"client={client} " in line + " ":
                        return name
            return None
        return await h.wait_until(find, 10, f"an access line for {client}")

    async def test_backend_sees_the_real_client_through_both_hops(self):
        await self.start_fleet()
        for _ in range(4):  # through both gateways
            async with h.ws_connect(self.lb, path="/app?user=alice") as ws:
                port = ws.local_address[1]
                await ws.send("alice:1")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "alice:1")
            backend = self.b1 if "b1" in self.echo.backend_of["alice"] else self.b2
            # HAProxy -> wsgate (v2) -> HAProxy (accept-proxy) -> backend: the client's
            # own source port, not HAProxy's nor wsgate's.
            self.assertEqual(backend.conns[-1].header("X-PP-Src"), f"127.0.0.1:{port}")
            line = await self.gws[await self.gateway_of(port)].wait_access_line(
                lambda f, p=port: f.get("client") == f"127.0.0.1:{p}", f"client port {port}")
            self.assertNotEqual(line["via"], f"127.0.0.1:{port}")  # HAProxy's own

    async def test_hash_key_sends_a_user_to_one_backend_through_either_instance(self):
        await self.start_fleet()
        via = collections.defaultdict(set)
        for round_ in range(2):
            for u in range(11):  # an odd count: round 2 meets the other gateway
                async with h.ws_connect(self.lb, path=f"/app?user=u{u}") as ws:
                    port = ws.local_address[1]
                    await ws.send(f"u{u}:{round_}")
                    await asyncio.wait_for(ws.recv(), 10)
                via[f"u{u}"].add(await self.gateway_of(port))
        both = [u for u, gs in via.items() if gs == {"g1", "g2"}]
        # Round robin alternates the gateways: most users went through both.
        self.assertGreaterEqual(len(both), 8, dict(via))
        for u in via:
            self.assertEqual(len(self.echo.backend_of[u]), 1,
                             f"{u} reached {self.echo.backend_of[u]}")
        # The 11 keys are spread over both backends.
        used = set().union(*(self.echo.backend_of[f"u{u}"] for u in range(11)))
        self.assertEqual(used, {"b1", "b2"})

    async def test_per_client_limits_hold_per_instance_by_the_real_client(self):
        if not h.ipv6_loopback_available():
            self.skipTest("no IPv6 loopback: the second client address is ::1")
        await self.start_fleet(limits={"max_connections_per_client": 1})
        results = {"127.0.0.1": [], "::1": []}
        held = []
        # HAProxy reaches both gateways from 127.0.0.1; the PROXY header names the client,
        # 127.0.0.1 or ::1. Four connections each, held open, alternate the gateways.
        for host, port in (("127.0.0.1", self.lb), ("::1", self.fleet6)):
            for i in range(4):
                try:
                    ws = await h.ws_connect(port, path=f"/app?user=l{i}", host=host)
                    held.append(ws)
                    results[host].append(("open", await self.gateway_of_live(
                        ws.local_address[1], host)))
                except websockets.exceptions.InvalidStatusCode as e:
                    results[host].append((e.status_code, None))
        try:
            for host, outcomes in results.items():
                opened = [g for what, g in outcomes if what == "open"]
                refused = [what for what, _ in outcomes if what != "open"]
                # One per instance for each client: the limit counts the real client.
                self.assertEqual(sorted(opened), ["g1", "g2"], (host, outcomes))
                self.assertEqual(refused, [429, 429], (host, outcomes))
            for g, admin in self.admins.items():
                m = await admin.metrics()
                self.assertEqual(m.value("wsgate_limit_rejections_total", limit="per_client"),
                                 2, (g, m.text))
        finally:
            for ws in held:
                await ws.close()

    async def test_draining_one_instance_moves_its_clients_without_loss(self):
        await self.start_fleet()
        n_clients = 20
        stop = asyncio.Event()
        stats = {"handshakes": 0, "handshakes_failed": 0, "closes": collections.Counter(),
                 "resent": 0, "moves": [], "acked": collections.Counter()}
        sigterm_at = [None]
        first_gateway = {}
        acked_here = collections.Counter()  # on the current connection
        last_gateway = {}

        async def client(user):
            seq = 1
            closed_at = None
            while not stop.is_set():
                try:
                    ws = await h.ws_connect(self.lb, path=f"/app?user={user}")
                    stats["handshakes"] += 1
                except (OSError, asyncio.TimeoutError,
                        websockets.exceptions.WebSocketException) as e:
                    stats["handshakes_failed"] += 1
                    print(f"handshake failed for {user}: {e!r}")
                    await asyncio.sleep(0.05)
                    continue
                gw = await self.gateway_of_open(ws)
                first_gateway.setdefault(user, gw)
                last_gateway[user] = gw
                acked_here[user] = 0
                try:
                    while not stop.is_set():
                        await ws.send(f"{user}:{seq}")
                        reply = await asyncio.wait_for(ws.recv(), 15)
                        self.assertEqual(reply, f"{user}:{seq}")
                        stats["acked"][user] += 1
                        acked_here[user] += 1
                        if closed_at is not None:
                            stats["moves"].append(time.monotonic() - closed_at)
                            closed_at = None
                        seq += 1
                        await asyncio.sleep(0.02)
                    await ws.close()
                except websockets.exceptions.ConnectionClosed:
                    # Not acknowledged: sent again on the next connection.
                    stats["closes"][ws.close_code] += 1
                    stats["resent"] += 1
                    closed_at = time.monotonic()
            return seq - 1  # the last acknowledged number

        tasks = {f"c{i}": asyncio.create_task(client(f"c{i}")) for i in range(n_clients)}
        try:
            await h.wait_until(lambda: len(stats["acked"]) == n_clients
                               and min(stats["acked"].values()) >= 5, 30,
                               "every client sending")
            on_g1 = [u for u, g in last_gateway.items() if g == "g1"]
            self.assertGreater(len(on_g1), 0, "round robin put clients on g1")
            before = dict(stats["acked"])
            g1 = self.gws["g1"]
            sigterm_at[0] = time.monotonic()
            g1.send_signal(signal.SIGTERM)
            rc = await g1.wait_exit(30)
            drained_in = time.monotonic() - sigterm_at[0]
            self.assertEqual(rc, 0, g1.describe())
            # Every client carries on through g2: ten messages on its connection there.
            await h.wait_until(lambda: all(last_gateway[u] == "g2" and acked_here[u] >= 10
                                           for u in tasks), 30, "every client carrying on on g2")
            self.assertTrue(all(stats["acked"][u] >= before[u] + 10 for u in tasks))
        finally:
            stop.set()
            last = {u: await asyncio.wait_for(t, 30) for u, t in tasks.items()}

        lost = duplicated = reordered = 0
        for u, n in last.items():
            got = [s for s in self.echo.received[u]]
            lost += len(set(range(1, n + 1)) - set(got))
            duplicated += len(got) - len(set(got))
            # In order: each number is the previous one, or the one after it (a resend).
            reordered += sum(1 for a, b in zip(got, got[1:]) if b not in (a, a + 1))
            self.assertEqual(len(self.echo.backend_of[u]), 1, f"{u} changed backends")
        moves = sorted(stats["moves"])
        figures = {
            "clients": n_clients, "moved_from_g1": len(on_g1),
            "messages_acknowledged": sum(last.values()), "messages_lost": lost,
            "messages_duplicated": duplicated, "messages_reordered": reordered,
            "resent_after_close": stats["resent"], "closes": dict(stats["closes"]),
            "handshakes": stats["handshakes"], "handshakes_failed": stats["handshakes_failed"],
            "move_seconds_median": round(statistics.median(moves), 3) if moves else None,
            "move_seconds_max": round(moves[-1], 3) if moves else None,
            "g1_sigterm_to_exit_seconds": round(drained_in, 3),
        }
        print("fleet drain figures:", figures)
        self.assertEqual(lost, 0, figures)
        self.assertEqual(reordered, 0, figures)
        self.assertEqual(stats["handshakes_failed"], 0, figures)
        # g1's clients got Close 1001 (server shutting down) and moved.
        self.assertEqual(stats["closes"][1001], len(on_g1), figures)
        self.assertEqual(len(moves), len(on_g1), figures)

    async def gateway_of_open(self, ws):
        return await self.gateway_of_live(ws.local_address[1])

    async def gateway_of_live(self, client_port, host="127.0.0.1"):
        """The gateway holding this client now, from /connections (by its source port)."""
        client = f"[{host}]:{client_port}" if ":" in host else f"{host}:{client_port}"
        for _ in range(200):  # up to 10 s
            for g, admin in self.admins.items():
                if self.gws[g].proc.poll() is not None:
                    continue
                try:
                    table = await admin.connections()
                except OSError:
                    continue
                if any(c["client"] == client for c in table["connections"]):
                    return g
            await asyncio.sleep(0.05)
        raise AssertionError(f"no gateway lists {client}")


if __name__ == "__main__":
    h.main()
