"""HTTP/1.1 client -> HTTP/1.1 backends found by DNS: a server given as a host name is
re-resolved every resolve_interval, every address becomes a member, a member that leaves
the answer gets no new connections and its open ones get Close 1001 (drained over
drain_spread; see test_drain_spread.py).

The test runs a tiny DNS responder on 127.0.0.1 (UDP, A records for one name) and points
wsgate at it with `nameservers`; the backends listen on 127.0.0.2 and 127.0.0.3 (loopback
addresses) on the same port.
"""

import asyncio
import os
import struct
import sys

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402

NAME = "backends.wsgate.test"


class TinyDns(asyncio.DatagramProtocol):
    """Answers A queries for NAME with `self.addresses` (TTL 0); AAAA and other types get
    an empty NOERROR answer, other names NXDOMAIN."""

    def __init__(self):
        self.name = NAME
        self.addresses: list[str] = []
        self.queries = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if len(data) < 12:
            return
        qid, _flags, qdcount = struct.unpack("!HHH", data[:6])
        if qdcount != 1:
            return
        pos, labels = 12, []
        while pos < len(data) and data[pos] != 0:
            n = data[pos]
            labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
        pos += 1
        qtype, _qclass = struct.unpack("!HH", data[pos:pos + 4])
        question = data[12:pos + 4]
        name = ".".join(labels).lower()
        self.queries += 1
        answers = b""
        rcode = 0
        if name != self.name:
            rcode = 3  # NXDOMAIN
        elif qtype == 1:
            for ip in self.addresses:
                answers += struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + bytes(
                    int(x) for x in ip.split("."))
        count = len(answers) // 16
        header = struct.pack("!HHHHHH", qid, 0x8400 | 0x0100 | rcode, 1, count, 0, 0)
        self.transport.sendto(header + question + answers, addr)


class IpBackend:
    """A websockets echo server on one loopback address; counts its connections."""

    def __init__(self, ip: str, port: int):
        self.ip, self.port = ip, port
        self.conns = 0
        self.server = None

    async def _handle(self, ws):
        self.conns += 1
        async for msg in ws:
            await ws.send(f"{self.ip}:{msg}")

    async def start(self):
        self.server = await websockets.serve(self._handle, self.ip, self.port, ping_interval=None)

    async def stop(self):
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 15)


async def ask(port: int, text: str) -> str:
    async with h.ws_connect(port) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), 20)


class DnsMembership(h.GatewayCase):
    async def test_h1_h1_dns_members_follow_the_answer_and_drain(self):
        loop = asyncio.get_running_loop()
        transport, dns = await loop.create_datagram_endpoint(TinyDns,
                                                             local_addr=("127.0.0.1", 0))
        self.addCleanup(transport.close)
        dns_port = transport.get_extra_info("sockname")[1]
        port = h.free_port("127.0.0.2")
        b2, b3 = IpBackend("127.0.0.2", port), IpBackend("127.0.0.3", port)
        for b in (b2, b3):
            await b.start()
            self.addAsyncCleanup(b.stop)

        dns.addresses = ["127.0.0.2"]
        gw_port = h.free_port()
        config = (f'workers = 2\naccess_log = "-"\nnameservers = ["127.0.0.1:{dns_port}"]\n\n'
                  f'[[listener]]\naddress = "127.0.0.1:{gw_port}"\n\n'
                  f'[[upstream]]\nname = "echo"\nservers = ["{NAME}:{port}"]\n'
                  f'balancer = "round_robin"\nresolve_interval = "200ms"\n\n'
                  f'[[route]]\npath = "/echo"\nupstream = "echo"\n')
        gw = await self.start_gateway(config)
        await h.wait_until(lambda: "resolves to 127.0.0.2" in gw.stderr_text(), 10,
                           "the first answer")
        for i in range(4):
            self.assertEqual(await ask(gw.port, f"a{i}"), f"127.0.0.2:a{i}")

        # A long-lived connection on 127.0.0.2, then the name moves to 127.0.0.3.
        async with h.ws_connect(gw.port) as held:
            await held.send("h1")
            self.assertEqual(await asyncio.wait_for(held.recv(), 20), "127.0.0.2:h1")
            dns.addresses = ["127.0.0.3"]
            await h.wait_until(
                lambda: f"removed 127.0.0.2:{port} (their connections drain)" in gw.stderr_text(),
                10, "the member change")
            self.assertIn(f"added 127.0.0.3:{port}", gw.stderr_text())
            for i in range(4):
                self.assertEqual(await ask(gw.port, f"b{i}"), f"127.0.0.3:b{i}")
            # The member that left drains: its connection gets Close 1001 from wsgate (at
            # once here: drain_spread is 0), and the client can reconnect to the new one.
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(held.recv(), 20)
            self.assertEqual((held.close_code, held.close_reason),
                             (1001, "upstream server left the pool"))
            self.assertIn("(left the pool)", gw.stderr_text())

        # Both addresses: both are members.
        dns.addresses = ["127.0.0.2", "127.0.0.3"]
        await h.wait_until(lambda: "resolves to 127.0.0.2, 127.0.0.3" in gw.stderr_text(), 10,
                           "two members")
        answers = {(await ask(gw.port, f"c{i}")).split(":")[0] for i in range(6)}
        self.assertEqual(answers, {"127.0.0.2", "127.0.0.3"})

        # A DNS failure (NXDOMAIN: the responder now serves another name) keeps them.
        dns.name = "other.name"
        await h.wait_until(lambda: "cannot resolve" in gw.stderr_text(), 10, "a failed lookup")
        answers = {(await ask(gw.port, f"d{i}")).split(":")[0] for i in range(6)}
        self.assertEqual(answers, {"127.0.0.2", "127.0.0.3"})

    async def test_reload_and_exit_while_a_lookup_hangs(self):
        """A nameserver that never answers keeps a lookup in flight. Replacing the resolver
        (a reload) or exiting cancels it; libevent reports the cancel later, from the loop.
        That late report once wrote into the freed resolver (heap-use-after-free under
        ASan at the first reload) and, at exit, leaked the lookup (LeakSanitizer)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                           local_addr=("127.0.0.1", 0))
        self.addCleanup(transport.close)
        silent_port = transport.get_extra_info("sockname")[1]
        gw_port = h.free_port()
        config = (f'workers = 1\naccess_log = ""\nnameservers = ["127.0.0.1:{silent_port}"]\n\n'
                  f'[[listener]]\naddress = "127.0.0.1:{gw_port}"\n\n'
                  f'[[upstream]]\nname = "echo"\nservers = ["{NAME}:9"]\n'
                  f'resolve_interval = "100ms"\n\n'
                  f'[[route]]\npath = "/echo"\nupstream = "echo"\n')
        gw = await self.start_gateway(config)
        for _ in range(3):
            await asyncio.sleep(0.3)
            await rh.sighup(gw, rh.RELOADED)
        await asyncio.sleep(0.3)
        # The harness stops it with SIGTERM and fails on an exit code other than 0 or
        # on any sanitizer report in its stderr.
        await gw.stop_async()


if __name__ == "__main__":
    h.main()
