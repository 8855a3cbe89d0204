"""Proxy authentication budget per client (issue 14 item 9): one client's flood of wrong
passwords spends its own PBKDF2 budget (and gets 503), not the whole worker's, so another
client's first attempt is still verified (407 for a wrong password, 200 for a right
one). Clients are told apart by address: 127.0.0.1 floods, 127.0.0.2 tries once.
"""

import asyncio
import base64
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402

PASSWORD = "right-password"
FLOODERS = 8


def basic(user: str, password: str) -> str:
    return "Proxy-Authorization: Basic " + base64.b64encode(
        f"{user}:{password}".encode()).decode() + "\r\n"


def status(head: bytes) -> int:
    return int(head.split(b" ")[1])


class ConnectAuthPerClient(h.GatewayCase):
    async def test_connect_one_clients_flood_does_not_lock_out_another(self):
        web = ch.HttpServer({"index.html": b"hi\n"})
        await web.__aenter__()
        self.addAsyncCleanup(web.__aexit__, None, None, None)
        # 20,000 iterations: one verification (~16 ms of CPU, which is what the budgets
        # charge, so a busy machine does not make it dearer) costs far less than the 0.2 s
        # of its 0.25 s burst the worker keeps from any one client (whose own burst is
        # 0.05 s), while the flood keeps the whole worker budget spent when there is no
        # per-client budget.
        text = ch.connect_config(h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [web.port]}],
                                 users=[("frank", ch.hash_password(PASSWORD, 20000))])
        gw = await self.start_gateway(text.replace("workers = 2", "workers = 1"))
        target = f"127.0.0.1:{web.port}"

        async def attempt(headers, source):
            sock, head = await ch.raw_connect(gw.port, target, headers, timeout=60,
                                              source=source)
            sock.close()
            return head

        # A flood that goes on: FLOODERS connections at a time from 127.0.0.1, each
        # opened again as soon as it is answered, until the other clients are done.
        done = asyncio.Event()
        flood_statuses = []

        async def flooder(n):
            i = 0
            while not done.is_set():
                flood_statuses.append(status(await attempt(basic("frank", f"g{n}-{i}"),
                                                           "127.0.0.1")))
                i += 1

        flood = [asyncio.create_task(flooder(n)) for n in range(FLOODERS)]
        try:
            # Wait (bounded) until the flood is being refused.
            await h.wait_until(lambda: flood_statuses.count(503) >= FLOODERS, 60,
                               "the flooding client to get 503s")
            # Meanwhile, other clients' first attempts are verified (407), each time.
            for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                other = await attempt(basic("frank", "wrong-once"), source)
                self.assertEqual(status(other), 407,
                                 f"{source}'s first attempt during the flood: {other!r} "
                                 f"(flood: {flood_statuses.count(407)} x 407, "
                                 f"{flood_statuses.count(503)} x 503)")
        finally:
            done.set()
            await asyncio.wait_for(asyncio.gather(*flood), 60)
        self.assertEqual(set(flood_statuses) - {407, 503}, set(), flood_statuses)
        right = await attempt(basic("frank", PASSWORD), "127.0.0.3")
        self.assertEqual(status(right), 200, right)
        line = await gw.wait_access_line(lambda f: f.get("status") == "503", "a 503")
        self.assertIn("from this client", line["reason"])


if __name__ == "__main__":
    h.main()
