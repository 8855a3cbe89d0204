"""HTTP/2 client -> HTTP/1.1 backend: graceful drain on SIGTERM. The connection gets
GOAWAY, every WebSocket stream gets Close 1001 (and so does its backend), and wsgate
exits 0 once the close handshakes are done.
"""

import os
import signal
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402


class Drain(h.GatewayCase):
    async def test_sigterm_sends_goaway_and_close_1001(self):
        backend = await self.start_backend(compression=None)
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"echo": [backend.address]},
                        [{"path": "/echo", "upstream": "echo"}], h2c=True)
        gw = h.Gateway(text)
        await gw.start_async()
        try:
            conn = await c.H2Conn.open("127.0.0.1", port, tls=False)
            self.addAsyncCleanup(conn.close)
            streams = [await c.H2WebSocket.open(conn, "/echo", scheme="http") for _ in range(2)]
            for i, ws in enumerate(streams):
                await ws.send(h.OP_TEXT, f"m{i}".encode())
                self.assertEqual(await ws.recv_message(), (h.OP_TEXT, f"m{i}".encode()))
            gw.send_signal(signal.SIGTERM)
            # The Close frames come before the GOAWAY (python3-h2 drops frames that follow
            # a GOAWAY, so this order is also what lets the test see them).
            for ws in streams:
                close = await ws.recv_frame()
                self.assertEqual(close.opcode, h.OP_CLOSE)
                self.assertEqual(close.close_code, 1001)
            for ws in streams:
                try:
                    await ws.send(h.OP_CLOSE, h.close_payload(1001))
                except Exception:  # h2 refuses to send once it has seen the GOAWAY
                    break
            await conn.wait_for(lambda: conn.terminated is not None, 10, "GOAWAY")
            self.assertEqual(int(conn.terminated.error_code), 0)  # NO_ERROR
            rc = await gw.wait_exit(20)
            self.assertEqual(rc, 0, gw.describe())
            for rec in await backend.wait_conns(2):
                await backend.wait_done(rec)
                self.assertEqual(rec.close_code, 1001)
        finally:
            await gw.stop_async(body_failed=not self._body_ok())


if __name__ == "__main__":
    h.main()
