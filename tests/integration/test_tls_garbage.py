"""Bytes that are not a ClientHello on a TLS listener: random bytes, a plain HTTP
request, a ClientHello that never completes, many of them at once. Each is closed
quickly (or by handshake_timeout), logged as "TLS handshake with IP:PORT failed: reason"
at a bounded rate, costs bounded memory, and the gateway keeps serving.

Certificates are generated now by the openssl CLI into a temporary folder.
"""

import asyncio
import collections
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

QUICK = 3.0  # seconds: far below handshake_timeout, so only a real rejection is quick
HANDSHAKE_TIMEOUT_S = 30
# Not a TLS record: content type 0, protocol version 1.2 (major byte 1).
GARBAGE = b"\x00\x01\x02" + os.urandom(2045)
# A TLS handshake record header announcing 512 bytes, then only 10 of them.
PARTIAL_HELLO = b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc\x03\x03" + os.urandom(4)


def vm_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class GarbageBase(h.PkiCase):
    workers = 1  # the log limit is per worker
    handshake_timeout = f"{HANDSHAKE_TIMEOUT_S}s"

    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.cert = pki.leaf("a", cls.ca, ["a.test"])

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"echo": [self.backend.address]},
                            [{"path": "/echo", "upstream": "echo"}],
                            listener={"handshake_timeout": self.handshake_timeout},
                            listener_tls={"certificates": [{"cert": self.cert.cert,
                                                            "key": self.cert.key}]},
                            workers=self.workers)
        self.gw = await self.start_gateway(text)

    async def still_serves(self):
        ctx = h.client_ssl_context(self.ca.cert)
        async with h.wss_connect(self.gw.port, ctx, "a.test") as ws:
            await ws.send("still here")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "still here")

    async def send_and_wait_close(self, data: bytes, timeout: float):
        """(client port, reply bytes, closed, seconds until closed)."""
        conn = await h.RawConn.open("127.0.0.1", self.gw.port)
        port = conn.local_port
        start = time.monotonic()
        try:
            try:
                await conn.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            reply, closed = await conn.read_until_eof(timeout)
        finally:
            conn.close()
        return port, reply, closed, time.monotonic() - start

    async def failure_line(self, port: int) -> str:
        lines = await h.wait_until(lambda: h.tls_failure_lines(self.gw.stderr_text(), port),
                                   10, f"a TLS handshake failure line for client port {port}")
        return lines[0]


class TlsGarbage(GarbageBase):
    async def test_tls_random_bytes_closed_quickly_and_logged(self):
        port, reply, closed, took = await self.send_and_wait_close(GARBAGE, QUICK)
        self.assertTrue(closed, f"connection still open {QUICK}s after garbage")
        self.assertNotIn(b"HTTP/1.1", reply, "an HTTP answer to bytes that are not TLS")
        line = await self.failure_line(port)
        self.assertRegex(line, r"TLS handshake with 127\.0\.0\.1:\d+ failed: \S")
        self.assertIn("wrong version number", line)
        await self.still_serves()

    async def test_tls_plain_http_request_closed_quickly_and_logged(self):
        request = h.upgrade_request("/echo", "a.test")
        port, reply, closed, took = await self.send_and_wait_close(request, QUICK)
        self.assertTrue(closed, f"connection still open {QUICK}s after a plain HTTP request")
        self.assertNotIn(b"101", reply)
        line = await self.failure_line(port)
        self.assertIn("http request", line)
        self.assertEqual(self.backend.requests, [], "a plain request reached the backend")
        await self.still_serves()

    async def test_tls_one_mebibyte_of_garbage_is_cut_short(self):
        # The gateway must give up on the first bad record, not read the rest.
        port, _, closed, took = await self.send_and_wait_close(b"\x00\x01\x02" * 350000, QUICK)
        self.assertTrue(closed, "a megabyte of garbage kept the connection open")
        await self.failure_line(port)
        await self.still_serves()

    async def test_tls_handshake_failure_log_is_rate_limited(self):
        # One worker: its limit is 10 lines a second; the rest are counted, and the count
        # is logged within a second, with no later failure needed to flush it. The 40
        # clients come at once, so even a slow (loaded, ASan) gateway sees more than 10 in
        # one second.
        n = 40
        results = await asyncio.gather(
            *(self.send_and_wait_close(GARBAGE, QUICK) for _ in range(n)))
        self.assertTrue(all(closed for _, _, closed, _ in results))

        def counts():
            err = self.gw.stderr_text()
            # The harness's startup probe fails first ("unexpected eof") and is always
            # logged; every other failure is one of ours, logged or counted.
            ours = [ln for ln in h.tls_failure_lines(err) if "wrong version number" in ln]
            suppressed = sum(int(m) for m in re.findall(r"(\d+) more TLS handshake failure", err))
            return len(ours), suppressed

        await h.wait_until(lambda: sum(counts()) == n, 10,
                           "every failure logged or counted as not logged")
        logged, suppressed = counts()
        self.assertGreater(suppressed, 0, "nothing was suppressed: the test proved nothing")
        per_second = collections.Counter(ln[:19] for ln in
                                         h.tls_failure_lines(self.gw.stderr_text()))
        self.assertLessEqual(max(per_second.values()), 10,
                             f"more than 10 failure lines in one second: {per_second}")
        await self.still_serves()


class TlsStalledHandshake(GarbageBase):
    handshake_timeout = "1s"

    async def test_tls_partial_client_hello_closed_by_handshake_timeout(self):
        port, reply, closed, took = await self.send_and_wait_close(PARTIAL_HELLO, 10)
        self.assertTrue(closed, "a stalled ClientHello was never closed")
        self.assertGreaterEqual(took, 0.9, "closed before handshake_timeout; the stall was "
                                           "not what closed it")
        self.assertNotIn(b"HTTP/1.1", reply, "a plaintext answer on a TLS connection")
        await self.still_serves()

    async def test_tls_silent_connection_closed_by_handshake_timeout(self):
        port, reply, closed, took = await self.send_and_wait_close(b"", 10)
        self.assertTrue(closed, "a connection that never spoke was never closed")
        self.assertEqual(reply, b"", "a plaintext answer on a TLS connection")

    async def test_tls_many_stalled_handshakes_cost_bounded_memory(self):
        n = 200
        # 100 KiB a connection (an SSL object and its record buffer are ~40 KiB); an
        # ASan build keeps freed memory in quarantine, so it gets four times as much.
        per_conn = 400 if "asan" in os.path.basename(h.WSGATE_BIN) else 100
        before = self.gw.vmrss_kib()
        self.assertLessEqual(vm_kib(self.gw.pid, "VmHWM") - before, n * per_conn,
                             "startup peak already above the bound; the check would be void")
        conns = []
        try:
            for _ in range(n):
                c = await h.RawConn.open("127.0.0.1", self.gw.port)
                conns.append(c)
                await c.send(PARTIAL_HELLO)
            # All of them end by handshake_timeout (1 s) plus the gateway's linger.
            deadline = time.monotonic() + 15
            open_left = 0
            for c in conns:
                _, closed = await c.read_until_eof(max(0.1, deadline - time.monotonic()))
                open_left += not closed
            self.assertEqual(open_left, 0, f"{open_left} stalled handshakes still open")
            # The peak RSS over the whole episode, against the RSS before it.
            grown = vm_kib(self.gw.pid, "VmHWM") - before
            self.assertLess(grown, n * per_conn, f"{n} stalled handshakes grew RSS by {grown} KiB")
        finally:
            for c in conns:
                c.close()
        await self.still_serves()


if __name__ == "__main__":
    h.main()
