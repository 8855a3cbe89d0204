"""CONNECT tunnels carrying volume and WebSockets.

10 MiB each way at once through one tunnel to a local TCP service, checked by SHA-256
both ways, with a half-close passed on; a python3-websockets client reaching a WebSocket
backend through the tunnel (websockets 10.4 has no proxy support: the test does the
CONNECT on a socket and hands it to websockets.connect(sock=...)).
"""

import asyncio
import hashlib
import os
import socket
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import connect_helpers as ch  # noqa: E402
import harness as h  # noqa: E402
import websockets  # noqa: E402

VOLUME = 10 * 1024 * 1024
CHUNK = 256 * 1024


class Service:
    """A TCP service: reads until EOF while sending VOLUME random bytes, then closes;
    records the SHA-256 of what it read and of what it sent."""

    def __init__(self):
        self.received = hashlib.sha256()
        self.received_len = 0
        self.sent = hashlib.sha256()
        self.done = asyncio.Event()

    async def _on_conn(self, reader, writer):
        async def send():
            left = VOLUME
            while left:
                data = os.urandom(min(CHUNK, left))
                self.sent.update(data)
                writer.write(data)
                await writer.drain()
                left -= len(data)

        sender = asyncio.ensure_future(send())
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            self.received.update(data)
            self.received_len += len(data)
        await sender
        writer.close()
        self.done.set()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


class ConnectH1Volume(h.GatewayCase):
    async def test_h1_connect_10mib_each_way_sha256(self):
        async with Service() as svc:
            admin_port = h.free_port()
            gw = await self.start_gateway(ac.with_admin(ch.connect_config(
                h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [svc.port]}],
                connect_keys={"buffer_size": "64KiB"}), admin_port))
            admin = ac.Admin(admin_port)
            await admin.wait_up()
            sock, head = await ch.raw_connect(gw.port, f"127.0.0.1:{svc.port}")
            self.assertTrue(head.startswith(b"HTTP/1.1 200 Connection Established\r\n"), head)
            loop = asyncio.get_running_loop()
            sent = hashlib.sha256()
            received = hashlib.sha256()
            got = 0

            async def upload():
                left = VOLUME
                while left:
                    data = os.urandom(min(CHUNK, left))
                    sent.update(data)
                    await loop.sock_sendall(sock, data)
                    left -= len(data)
                sock.shutdown(socket.SHUT_WR)  # the service sees EOF through the tunnel

            async def download():
                nonlocal got
                while True:
                    data = await loop.sock_recv(sock, CHUNK)
                    if not data:
                        return
                    received.update(data)
                    got += len(data)

            try:
                await asyncio.wait_for(asyncio.gather(upload(), download()), 25)
            finally:
                sock.close()
            await asyncio.wait_for(svc.done.wait(), 10)
            self.assertEqual(svc.received_len, VOLUME)
            self.assertEqual(svc.received.hexdigest(), sent.hexdigest())
            self.assertEqual(got, VOLUME)
            self.assertEqual(received.hexdigest(), svc.sent.hexdigest())
            line = await gw.wait_access_line(lambda f: f.get("status") == "200", "the tunnel")
            self.assertEqual(int(line["c2u_bytes"]), VOLUME)
            self.assertEqual(int(line["u2c_bytes"]), VOLUME)
            # Bulk both ways: most of it went socket to socket by splice(2), unread.
            metrics = await admin.metrics()
            for direction in ("client_to_upstream", "upstream_to_client"):
                spliced = metrics.value("wsgate_spliced_bytes_total", direction=direction)
                self.assertGreater(spliced, VOLUME // 2, direction)
                self.assertLessEqual(spliced, VOLUME, direction)

    async def test_h1_connect_websocket_client_through_tunnel(self):
        backend = await self.start_backend(compression=None)
        gw = await self.start_gateway(ch.connect_config(
            h.free_port(), [{"cidr": "127.0.0.1/32", "ports": [backend.port]}]))
        sock, head = await ch.raw_connect(gw.port, backend.address)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        async with websockets.connect(f"ws://{backend.address}/chat", sock=sock,
                                             compression=None, ping_interval=None,
                                             open_timeout=10) as ws:
            for i in range(20):
                await ws.send(f"message {i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), f"message {i}")
            await ws.send(b"\x00" * 300000)
            self.assertEqual(len(await asyncio.wait_for(ws.recv(), 10)), 300000)
        conns = await backend.wait_conns(1)
        self.assertEqual(conns[0].path, "/chat")
        line = await gw.wait_access_line(lambda f: f.get("status") == "200", "the tunnel")
        self.assertEqual(line["proto"], "http/1.1")
        self.assertEqual(line["target"], backend.address)


if __name__ == "__main__":
    h.main()
