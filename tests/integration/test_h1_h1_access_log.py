"""HTTP/1.1 client -> HTTP/1.1 backend: the access log.

One logfmt line per finished connection, starting with `access `, with the client,
route, upstream, status, duration, bytes and messages each way, close code and which
side closed. Lines are matched to connections by the client's source port.
"""

import asyncio
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

REQUIRED = ("client", "route", "upstream", "status", "duration_ms", "c2u_bytes", "c2u_msgs",
            "u2c_bytes", "u2c_msgs", "close_code", "closed_by")
INT_FIELDS = ("status", "duration_ms", "c2u_bytes", "c2u_msgs", "u2c_bytes", "u2c_msgs",
              "close_code")


def config(gw_port, backend, **route):
    return h.make_config(f"127.0.0.1:{gw_port}", {"echo": [backend.address]},
                         [{"name": "echo-route", "host": "*", "path": "/echo",
                           "upstream": "echo", **route}])


class AccessLog(h.GatewayCase):
    def check_shape(self, fields):
        for key in REQUIRED:
            self.assertIn(key, fields, f"access line lacks {key}: {fields}")
        for key in INT_FIELDS:
            self.assertRegex(fields[key], r"^\d+$", f"{key} is not a number: {fields}")

    async def line_for(self, gw, local_port, path=None):
        client = f"127.0.0.1:{local_port}"
        return await gw.wait_access_line(lambda f: f.get("client") == client,
                                         f"client {client}", path=path)

    def assert_bytes(self, fields, key, payload):
        # Payload bytes, or bytes on the wire with frame headers (and close frames).
        value = int(fields[key])
        self.assertGreaterEqual(value, payload, f"{key}: {fields}")
        self.assertLessEqual(value, payload + 200, f"{key}: {fields}")

    async def test_known_exchange_closed_by_client(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(config(h.free_port(), backend))
        async with h.ws_connect(gw.port, compression=None) as ws:
            local_port = ws.local_address[1]
            for msg in ("a" * 10, "b" * 20, "c" * 30):
                await ws.send(msg)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), msg)
            await ws.close(1000)
        fields = await self.line_for(gw, local_port)
        self.check_shape(fields)
        self.assertEqual(fields["_msg"], "access")
        self.assertEqual(fields["route"], "echo-route")
        self.assertEqual(fields["upstream"], backend.address)
        self.assertEqual(fields["status"], "101")
        self.assertEqual((fields["c2u_msgs"], fields["u2c_msgs"]), ("3", "3"))
        self.assert_bytes(fields, "c2u_bytes", 60)
        self.assert_bytes(fields, "u2c_bytes", 60)
        self.assertEqual(fields["close_code"], "1000")
        self.assertEqual(fields["closed_by"], "client")
        self.assertLess(int(fields["duration_ms"]), 60000)
        lines = [ln for ln in gw.access_log_lines() if f"client=127.0.0.1:{local_port}" in ln]
        self.assertEqual(len(lines), 1, f"expected one line per connection: {lines}")

    async def test_duration_covers_the_connection_lifetime(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(config(h.free_port(), backend))
        async with h.ws_connect(gw.port) as ws:
            local_port = ws.local_address[1]
            await ws.send("start")
            await asyncio.wait_for(ws.recv(), 10)
            await asyncio.sleep(0.5)  # the connection stays open this long
        fields = await self.line_for(gw, local_port)
        self.assertGreaterEqual(int(fields["duration_ms"]), 450, fields)
        self.assertLess(int(fields["duration_ms"]), 20000, fields)

    async def test_asymmetric_exchange_counts_each_direction(self):
        async def talker(ws, rec):
            msg = await ws.recv()                  # 1 message in
            rec.messages.append(msg)
            for i in range(5):                     # 5 messages out, 1000 bytes each
                await ws.send(bytes([i]) * 1000)
            await ws.wait_closed()

        backend = await self.start_backend(talker)
        gw = await self.start_gateway(config(h.free_port(), backend))
        async with h.ws_connect(gw.port, compression=None) as ws:
            local_port = ws.local_address[1]
            await ws.send(b"q" * 100)
            for _ in range(5):
                await asyncio.wait_for(ws.recv(), 10)
        fields = await self.line_for(gw, local_port)
        self.check_shape(fields)
        self.assertEqual((fields["c2u_msgs"], fields["u2c_msgs"]), ("1", "5"))
        self.assert_bytes(fields, "c2u_bytes", 100)
        self.assert_bytes(fields, "u2c_bytes", 5000)

    async def test_closed_by_upstream(self):
        backend = await self.start_backend(h.close_handler(1011, "bye", after_messages=1))
        gw = await self.start_gateway(config(h.free_port(), backend))
        async with h.ws_connect(gw.port, compression=None) as ws:
            local_port = ws.local_address[1]
            await ws.send("one")
            await asyncio.wait_for(ws.recv(), 10)
            await asyncio.wait_for(ws.wait_closed(), 15)
        self.assertEqual(ws.close_code, 1011)
        fields = await self.line_for(gw, local_port)
        self.check_shape(fields)
        self.assertEqual(fields["closed_by"], "upstream")
        self.assertEqual(fields["close_code"], "1011")
        self.assertEqual((fields["c2u_msgs"], fields["u2c_msgs"]), ("1", "1"))

    async def test_closed_by_gateway(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(config(h.free_port(), backend, max_message_size="1KiB"))
        async with h.ws_connect(gw.port, compression=None) as ws:
            local_port = ws.local_address[1]
            await ws.send(b"x" * 2048)
            await asyncio.wait_for(ws.wait_closed(), 15)
        self.assertEqual(ws.close_code, 1009)
        fields = await self.line_for(gw, local_port)
        self.check_shape(fields)
        self.assertEqual(fields["closed_by"], "gateway")
        self.assertEqual(fields["close_code"], "1009")
        self.assertEqual(fields["c2u_msgs"], "0")

    async def test_one_line_per_connection(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(config(h.free_port(), backend))
        ports = []
        for i in range(3):
            async with h.ws_connect(gw.port) as ws:
                ports.append(ws.local_address[1])
                await ws.send(str(i))
                await asyncio.wait_for(ws.recv(), 10)
        for p in ports:
            await self.line_for(gw, p)
        for p in ports:
            n = sum(1 for ln in gw.access_log_lines() if f"client=127.0.0.1:{p} " in ln + " ")
            self.assertEqual(n, 1, f"client port {p}: {n} lines")

    async def test_rejected_handshake_is_logged_with_its_status(self):
        backend = await self.start_backend()
        gw = await self.start_gateway(config(h.free_port(), backend))
        conn = await h.RawConn.open("127.0.0.1", gw.port)
        async with conn:
            local_port = conn.local_port
            await conn.send(h.upgrade_request("/nowhere", "127.0.0.1"))
            data, _ = await conn.read_until_eof(10)
        self.assertEqual(h.response_from(data, True, 0).status, 404)
        fields = await self.line_for(gw, local_port)
        self.assertEqual(fields.get("status"), "404", fields)

    async def test_access_log_to_file(self):
        backend = await self.start_backend()
        port = h.free_port()
        log_dir = self.enterContext(tempfile.TemporaryDirectory(prefix="wsgate-log-"))
        log_path = os.path.join(log_dir, "access.log")
        text = h.make_config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                             [{"name": "echo-route", "host": "*", "path": "/echo",
                               "upstream": "echo"}], access_log=log_path)
        gw = await self.start_gateway(text)
        async with h.ws_connect(gw.port) as ws:
            local_port = ws.local_address[1]
            await ws.send("to file")
            await asyncio.wait_for(ws.recv(), 10)
        fields = await self.line_for(gw, local_port, path=log_path)
        self.check_shape(fields)
        self.assertEqual(fields["c2u_msgs"], "1")
        self.assertEqual(gw.access_log_lines(), [], "access lines on stdout with a log file")

    async def test_access_log_to_stderr(self):
        backend = await self.start_backend()
        text = h.make_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                             [{"name": "echo-route", "host": "*", "path": "/echo",
                               "upstream": "echo"}], access_log="stderr")
        gw = await self.start_gateway(text)
        async with h.ws_connect(gw.port) as ws:
            local_port = ws.local_address[1]
            await ws.send("to stderr")
            await asyncio.wait_for(ws.recv(), 10)
        marker = f"client=127.0.0.1:{local_port} "
        line = await h.wait_until(
            lambda: next((l for l in gw.stderr_text().splitlines()
                          if l.startswith("access ") and marker in l), None),
            10, "an access line on stderr")
        self.assertIn("route=echo-route", line)
        self.assertIn("c2u_msgs=1", line)
        self.assertEqual(gw.access_log_lines(), [], "access lines on stdout with stderr chosen")

    async def test_request_fields_and_request_id_passed_upstream(self):
        # Host, User-Agent, Origin, the subprotocol the upstream chose, and a request id
        # that is also the upstream's X-Request-Id; a client's own X-Request-Id is not
        # believed (no trusted_proxies).
        backend = await self.start_backend(subprotocols=["v2.chat"])
        gw = await self.start_gateway(config(h.free_port(), backend))
        async with h.ws_connect(gw.port, origin="https://app.example",
                                user_agent_header="fleet-test/1.0 (x)",
                                subprotocols=["v1.chat", "v2.chat"],
                                extra_headers={"X-Request-Id": "forged-by-client"}) as ws:
            local_port = ws.local_address[1]
            self.assertEqual(ws.subprotocol, "v2.chat")
            await ws.send("hi")
            await asyncio.wait_for(ws.recv(), 10)
        fields = await self.line_for(gw, local_port)
        self.assertEqual(fields["host"], f"127.0.0.1:{gw.port}")
        self.assertEqual(fields["path"], "/echo")
        self.assertEqual(fields["user_agent"], "fleet-test/1.0 (x)")
        self.assertEqual(fields["origin"], "https://app.example")
        self.assertEqual(fields["subprotocol"], "v2.chat")
        self.assertRegex(fields["request_id"], r"^[0-9a-f]{32}$")
        seen = backend.conns[-1].headers("x-request-id")
        self.assertEqual(seen, [fields["request_id"]], "the upstream's X-Request-Id")

    async def test_trusted_proxy_request_id_is_kept(self):
        backend = await self.start_backend()
        text = config(h.free_port(), backend)
        text = text.replace("access_log = ", 'trusted_proxies = ["127.0.0.1/32"]\naccess_log = ', 1)
        gw = await self.start_gateway(text)
        ids = []
        for sent in ("edge-7f3a-0001", "bad id with spaces"):
            async with h.ws_connect(gw.port, extra_headers={"X-Request-Id": sent}) as ws:
                local_port = ws.local_address[1]
                await ws.send("x")
                await asyncio.wait_for(ws.recv(), 10)
            fields = await self.line_for(gw, local_port)
            ids.append(fields["request_id"])
            self.assertEqual(backend.conns[-1].headers("x-request-id"), [fields["request_id"]])
        self.assertEqual(ids[0], "edge-7f3a-0001")
        self.assertRegex(ids[1], r"^[0-9a-f]{32}$", "a malformed id is replaced")
        # A refused handshake is logged with an id too.
        conn = await h.RawConn.open("127.0.0.1", gw.port)
        async with conn:
            local_port = conn.local_port
            await conn.send(h.upgrade_request("/nowhere", "127.0.0.1"))
            await conn.read_until_eof(10)
        fields = await self.line_for(gw, local_port)
        self.assertEqual((fields["status"], fields["path"]), ("404", "/nowhere"))
        self.assertRegex(fields["request_id"], r"^[0-9a-f]{32}$")


if __name__ == "__main__":
    h.main()
