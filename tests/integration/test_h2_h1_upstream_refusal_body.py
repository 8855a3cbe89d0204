"""HTTP/2 and HTTP/1.1 clients -> HTTP/1.1 backend: a refusal body over the 1 MiB bound.

The gateway forwards a backend's refusal of the upgrade (401, 403, ...) with its body,
up to 1 MiB. A refusal that declares a larger Content-Length would reach the client cut
under a length it does not match (a malformed message, RFC 9113 8.1.1), so the gateway
answers 502 itself before sending any of it. A body without Content-Length is cut at
1 MiB and the stream ends cleanly.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import h2_client as c  # noqa: E402

MIB = 1024 * 1024


def refusal(body_len: int, *, content_length: bool = True) -> bytes:
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
    if content_length:
        head += b"Content-Length: %d\r\n" % body_len
    return head + b"\r\n" + b"x" * body_len


class RefusalBody(h.GatewayCase):
    async def gateway(self, upstream) -> h.Gateway:
        port = h.free_port()
        text = c.config(f"127.0.0.1:{port}", {"echo": [upstream.address]},
                        [{"name": "ws", "path": "/echo", "upstream": "echo"}], h2c=True)
        return await self.start_gateway(text)

    async def h2_refusal(self, reply: bytes) -> c.StreamState:
        async with h.SilentServer(reply=reply, close_after_reply=True) as upstream:
            gw = await self.gateway(upstream)
            conn = await c.H2Conn.open("127.0.0.1", gw.port, tls=False)
            self.addAsyncCleanup(conn.close)
            st = await conn.request(c.connect_headers(scheme="http"))
            await conn.response(st)
            await conn.wait_for(lambda: st.ended or st.reset is not None or conn.closed, 20,
                                "the end of the answer")
            self.assertIsNone(conn.terminated, "the h2 connection failed")
            # RST_STREAM NO_ERROR after the whole answer is fine (RFC 9113 8.1: the client
            # never ended its side); anything else is a failed answer.
            self.assertIn(st.reset, (None, 0), f"stream reset {st.reset}")
            self.assertTrue(st.ended, "the answer did not end with END_STREAM")
            cl = st.header("content-length")
            if cl is not None:
                self.assertEqual(int(cl), len(st.body), "content-length does not match the body")
            return st

    async def test_h2_h1_refusal_declaring_over_1mib_is_502(self):
        st = await self.h2_refusal(refusal(2 * MIB))
        self.assertEqual(st.status, 502, st.headers)
        self.assertIn(b"upstream refusal body over 1 MiB", bytes(st.body))

    async def test_h2_h1_refusal_of_exactly_1mib_is_forwarded(self):
        st = await self.h2_refusal(refusal(MIB))
        self.assertEqual(st.status, 403, st.headers)
        self.assertEqual(st.header("content-length"), str(MIB))
        self.assertEqual(len(st.body), MIB)

    async def test_h2_h1_refusal_without_length_is_cut_at_1mib(self):
        st = await self.h2_refusal(refusal(2 * MIB, content_length=False))
        self.assertEqual(st.status, 403, st.headers)
        self.assertIsNone(st.header("content-length"))
        self.assertEqual(len(st.body), MIB)

    async def test_h1_h1_refusal_declaring_over_1mib_is_502(self):
        async with h.SilentServer(reply=refusal(2 * MIB), close_after_reply=True) as upstream:
            gw = await self.gateway(upstream)
            resp = await h.http_exchange("127.0.0.1", gw.port,
                                         h.upgrade_request("/echo", "127.0.0.1"), timeout=20)
            h.assert_error_response(self, resp, 502, "refusal over 1 MiB")
            self.assertIn(b"upstream refusal body over 1 MiB", resp.body)


if __name__ == "__main__":
    h.main()
