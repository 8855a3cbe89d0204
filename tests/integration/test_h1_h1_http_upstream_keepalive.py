"""HTTP/1.1 client -> HTTP/1.1 upstream: idle keep-alive connections to the upstream
(issue 15; [[upstream]] keepalive, keepalive_timeout).

Reuse is read from the upstream's own side: Node's http module (http_backend.js) numbers
its TCP connections and counts the requests each carried. A scripted upstream closes a
reused connection as the next request arrives (the race RFC 9112 9.3.1 describes): a GET
is sent again on a new connection, once, and succeeds.
"""

import asyncio
import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402


def config(port, upstreams, routes):
    text = f'workers = 1\naccess_log = "-"\n\n[[listener]]\naddress = "127.0.0.1:{port}"\n\n'
    for name, servers, extra in upstreams:
        text += f'[[upstream]]\nname = "{name}"\nservers = {h.toml_value(servers)}\n'
        text += "".join(f"{k} = {h.toml_value(v)}\n" for k, v in extra.items()) + "\n"
    for path, upstream in routes:
        text += f'[[route]]\npath = "{path}"\nupstream = "{upstream}"\n\n'
    return text


class UpstreamKeepAlive(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.backend = await hh.start_node_backend(self, "b1")
        self.port = h.free_port()
        self.gw = await self.start_gateway(config(
            self.port,
            [("pooled", [self.backend.address], {}),
             ("short", [self.backend.address], {"keepalive_timeout": "300ms"}),
             ("medium", [self.backend.address], {"keepalive_timeout": "1500ms"}),
             ("off", [self.backend.address], {"keepalive": 0})],
            [("/", "pooled"), ("/short", "short"), ("/medium", "medium"), ("/off", "off")]))

    async def info(self, path, *curl_args):
        p = await hh.curl(*curl_args, f"http://127.0.0.1:{self.port}{path}")
        self.assertEqual(p.returncode, 0, p.stderr)
        d = json.loads(p.stdout)
        return d["connection"], d["connection_requests"], d["headers"]

    async def test_sequential_requests_share_one_upstream_connection(self):
        seen = [await self.info(f"/info?i={i}") for i in range(10)]
        self.assertEqual({c for c, _, _ in seen}, {seen[0][0]}, seen)
        self.assertEqual([n for _, n, _ in seen], list(range(1, 11)))
        self.assertNotIn("Connection", seen[0][2][::2])  # keep-alive is HTTP/1.1's default

    async def test_idle_connection_closed_after_keepalive_timeout(self):
        first, _, _ = await self.info("/short/info")
        again, _, _ = await self.info("/short/info")
        self.assertEqual(again, first)
        await asyncio.sleep(1.0)  # > keepalive_timeout: the gateway closed it
        later, n, _ = await self.info("/short/info")
        self.assertNotEqual(later, first)
        self.assertEqual(n, 1)

    async def test_keepalive_timeout_counts_from_the_last_request(self):
        # Used again every 0.4 s, the connection outlives its first 1.5 s in the pool
        # (each stay in the pool has its own keepalive_timeout: the pool's timer, left
        # pending across uses, must not cut it at the first deadline). The gaps are
        # measured: a machine too slow to keep them well under 1.5 s proves nothing.
        loop = asyncio.get_running_loop()
        first, _, _ = await self.info("/medium/info")
        started = last = loop.time()
        while loop.time() - started < 3.5:  # > twice keepalive_timeout
            await asyncio.sleep(0.4)
            gap = loop.time() - last
            again, _, _ = await self.info("/medium/info")
            last = loop.time()
            if gap < 1.2:
                self.assertEqual(again, first, f"a new upstream connection after {gap:.2f} s")
            first = again

    async def test_keepalive_0_means_one_connection_per_request(self):
        seen = [await self.info("/off/info") for _ in range(3)]
        self.assertEqual(len({c for c, _, _ in seen}), 3, seen)
        fields = dict(zip(seen[0][2][::2], seen[0][2][1::2]))
        self.assertEqual(fields.get("Connection"), "close")

    async def test_non_idempotent_requests_use_a_new_connection(self):
        pooled, _, _ = await self.info("/info?get")
        post, n, _ = await self.info("/info?post", "--data-binary", "x")
        self.assertNotEqual(post, pooled)
        self.assertEqual(n, 1)
        # Both connections are idle now; the next GET takes the newest (the POST's).
        after, _, _ = await self.info("/info?after")
        self.assertEqual(after, post)


class StaleConnection(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.connections = 0
        self.requests = []

        async def serve(reader, writer):
            self.connections += 1
            number = self.connections
            try:
                while True:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                    self.requests.append((number, head.split(b" ")[1].decode()))
                    if number == 1 and len(self.requests) == 2:
                        break  # the race: the server closes as the second request arrives
                    body = f"conn {number}".encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                                 + body)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.addAsyncCleanup(self.close_server)
        up = f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        self.port = h.free_port()
        self.gw = await self.start_gateway(config(
            self.port, [("app", [up], {"keepalive_timeout": "30s"})], [("/", "app")]))

    async def close_server(self):
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 10)

    async def test_get_on_a_closed_reused_connection_is_sent_again_once(self):
        for path, want in (("/one", b"conn 1"), ("/two", b"conn 2")):
            r = await h.http_exchange(
                "127.0.0.1", self.port,
                f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
            self.assertEqual((r.status, r.body), (200, want), r.raw)
        self.assertEqual(self.requests, [(1, "/one"), (1, "/two"), (2, "/two")])


if __name__ == "__main__":
    h.main()
