"""HTTP/1.1 client -> HTTP/1.1 backend: messages relayed both ways, byte for byte.

Sizes on each side of the frame-length encodings (0, 125, 126, 65535, 65536) and 16 MiB,
text and binary; fragmented messages (with a ping between fragments); ping/pong in both
directions; subprotocol and permessage-deflate negotiation passed through; an IPv6
listener; and the C++ demo echo backend behind the gateway.
"""

import asyncio
import os
import random
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MiB = 1024 * 1024
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 * MiB]


def text_of(n: int, seed: int) -> str:
    rnd = random.Random(seed)
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(n)) \
        if n <= 65537 else ("wsgate " * (n // 7 + 1))[:n]


class Echo(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()
        self.gw = await self.start_gateway(h.simple_config(
            h.free_port(), [self.backend.address], route={"max_message_size": "32MiB"}))

    async def test_text_and_binary_at_length_boundaries(self):
        async with h.ws_connect(self.gw.port, compression=None) as ws:
            sent = []
            for n in SIZES:
                for kind in ("text", "binary"):
                    msg = text_of(n, n) if kind == "text" else os.urandom(n)
                    with self.subTest(kind=kind, size=n):
                        await ws.send(msg)
                        got = await asyncio.wait_for(ws.recv(), 30)
                        self.assertEqual(type(got), type(msg))
                        self.assertEqual(len(got), n)
                        self.assertTrue(got == msg, f"{kind} {n} bytes corrupted")
                    sent.append(msg)
        rec = (await self.backend.wait_conns(1))[0]
        await self.backend.wait_done(rec)
        self.assertEqual(len(rec.messages), len(sent))
        self.assertTrue(all(a == b for a, b in zip(rec.messages, sent)),
                        "backend received different messages")
        self.assertEqual(rec.close_code, 1000)

    async def test_multibyte_text(self):
        msg = "héllo wörld € 😀 " * 5000
        async with h.ws_connect(self.gw.port, compression=None) as ws:
            await ws.send(msg)
            self.assertEqual(await asyncio.wait_for(ws.recv(), 30), msg)

    async def test_16_mib_messages(self):
        text = ("0123456789abcdef" * (MiB))  # 16 MiB of ASCII
        data = os.urandom(16 * MiB)
        async with h.ws_connect(self.gw.port, compression=None, max_size=None) as ws:
            await ws.send(text)
            got = await asyncio.wait_for(ws.recv(), 120)
            self.assertEqual(len(got), len(text))
            self.assertTrue(got == text, "16 MiB text corrupted")
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), 120)
            self.assertEqual(len(got), len(data))
            self.assertTrue(got == data, "16 MiB binary corrupted")
        rec = (await self.backend.wait_conns(1))[0]
        await self.backend.wait_done(rec)
        self.assertEqual([len(m) for m in rec.messages], [16 * MiB, 16 * MiB])

    async def test_fragmented_messages_both_ways(self):
        async def fragments():
            yield "frag-one "
            # A control frame between fragments is legal (RFC 6455 5.4).
            pong = await ws.ping(b"mid")
            yield "frag-two " * 1000
            yield ""
            yield "frag-three"
            await asyncio.wait_for(pong, 10)

        async def binary_fragments():
            for i in range(50):
                yield bytes([i]) * (1000 + i)

        async with h.ws_connect(self.gw.port, compression=None) as ws:
            await ws.send(fragments())
            expected_text = "frag-one " + "frag-two " * 1000 + "frag-three"
            self.assertEqual(await asyncio.wait_for(ws.recv(), 20), expected_text)
            await ws.send(binary_fragments())
            expected_bin = b"".join(bytes([i]) * (1000 + i) for i in range(50))
            self.assertEqual(await asyncio.wait_for(ws.recv(), 20), expected_bin)
        rec = (await self.backend.wait_conns(1))[0]
        await self.backend.wait_done(rec)
        self.assertEqual(rec.messages, [expected_text, expected_bin],
                         "backend did not get the reassembled messages")

    async def test_ping_pong_client_to_backend(self):
        async with h.ws_connect(self.gw.port) as ws:
            for payload in (b"", b"p" * 125, b"hello"):
                pong = await ws.ping(payload)
                await asyncio.wait_for(pong, 10)
            await ws.send("after pings")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "after pings")


class PingFromBackend(h.GatewayCase):
    async def test_ping_pong_backend_to_client(self):
        result = {}

        async def pinger(ws, rec):
            for payload in (b"", b"b" * 125):
                pong = await ws.ping(payload)
                await asyncio.wait_for(pong, 10)
            result["pongs"] = True
            await ws.send("pinged")
            await ws.wait_closed()

        backend = await self.start_backend(pinger)
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address]))
        async with h.ws_connect(gw.port) as ws:
            self.assertEqual(await asyncio.wait_for(ws.recv(), 20), "pinged")
        self.assertTrue(result.get("pongs"), "backend's pings were not answered")
        self.assertIsNone(backend.conns[0].error)


class Negotiation(h.GatewayCase):
    async def test_subprotocol_pass_through(self):
        backend = await self.start_backend(subprotocols=["superchat"])
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address]))
        async with h.ws_connect(gw.port, subprotocols=["chat", "superchat"]) as ws:
            self.assertEqual(ws.subprotocol, "superchat")
            await ws.send("x")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")
        rec = backend.conns[0]
        self.assertEqual(rec.subprotocol, "superchat")
        offered = ",".join(rec.headers("Sec-WebSocket-Protocol"))
        self.assertEqual([p.strip() for p in offered.split(",")], ["chat", "superchat"])

    async def test_no_subprotocol_when_backend_selects_none(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address]))
        async with h.ws_connect(gw.port, subprotocols=["chat"]) as ws:
            self.assertIsNone(ws.subprotocol)
            await ws.send("x")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "x")

    async def test_permessage_deflate_pass_through(self):
        backend = await self.start_backend(compression="deflate")
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address]))
        compressible = "compress me please " * 50000      # ~1 MiB
        incompressible = os.urandom(200000)
        async with h.ws_connect(gw.port, compression="deflate") as ws:
            self.assertTrue(ws.extensions, "client did not negotiate permessage-deflate")
            self.assertEqual(ws.extensions[0].name, "permessage-deflate")
            for msg in (compressible, incompressible, "small", b""):
                await ws.send(msg)
                self.assertTrue(await asyncio.wait_for(ws.recv(), 30) == msg)
        rec = backend.conns[0]
        await backend.wait_done(rec)
        self.assertTrue(rec.extensions, "backend did not negotiate permessage-deflate")
        self.assertIn("permessage-deflate", rec.header("Sec-WebSocket-Extensions") or "")
        self.assertEqual(len(rec.messages), 4)

    async def test_no_deflate_when_backend_refuses_it(self):
        backend = await self.start_backend(compression=None)
        gw = await self.start_gateway(h.simple_config(h.free_port(), [backend.address]))
        async with h.ws_connect(gw.port, compression="deflate") as ws:
            self.assertEqual(ws.extensions, [])
            await ws.send("plain " * 1000)
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "plain " * 1000)


class IPv6Listener(h.GatewayCase):
    async def test_ipv6_loopback_listener(self):
        if not h.ipv6_loopback_available():
            self.skipTest("::1 is not available on this host")
        backend = await self.start_backend()
        port = h.free_port("::1")
        gw = await self.start_gateway(h.simple_config(port, [backend.address],
                                                      listen_host="::1"))
        self.assertEqual(gw.host, "::1")
        async with h.ws_connect(port, host="::1") as ws:
            await ws.send("over ipv6")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "over ipv6")
        rec = backend.conns[0]
        await backend.wait_done(rec)
        self.assertEqual(rec.messages, ["over ipv6"])
        self.assertIn(rec.header("X-Forwarded-For"), ("::1", "[::1]"))


class CppEchoBackend(h.GatewayCase):
    async def test_through_demo_echo_backend(self):
        if not h.have_binary(h.ECHO_BACKEND_BIN):
            self.skipTest(f"echo backend not built at {h.ECHO_BACKEND_BIN}")
        async with h.EchoBackendProcess() as echo:
            gw = await self.start_gateway(h.simple_config(h.free_port(), [echo.address]))
            async with h.ws_connect(gw.port, compression=None) as ws:
                for msg in ("hello", b"\x00\x01" * 40000, "x" * 65536):
                    await ws.send(msg)
                    self.assertTrue(await asyncio.wait_for(ws.recv(), 20) == msg)
                await ws.close(1000)
            self.assertEqual(ws.close_code, 1000)
            # Stop the gateway while the backend is still up (cleanup would do it later).
            await gw.stop_async()


if __name__ == "__main__":
    h.main()
