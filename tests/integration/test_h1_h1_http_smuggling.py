"""HTTP/1.1 client -> HTTP/1.1 upstream: request smuggling vectors (issue 15).

Each vector is a request whose end two HTTP parsers could find in different places,
followed by a second, "smuggled" request. The gateway must answer it itself with 400
(501 for a transfer coding it does not know) and a one-line reason, close the
connection, and let neither the request nor the smuggled one reach the upstream
(Node's http module, http_backend.js, records every request it parses). A valid
chunked request and a valid Content-Length request are the positive controls.
"""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

# (name, head fields after Host, body) - the request line is "POST /v/<name> HTTP/1.1".
VECTORS = [
    ("cl_te", b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    ("te_cl", b"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", b"0\r\n\r\n"),
    ("two_cl_differing", b"Content-Length: 5\r\nContent-Length: 41\r\n", b"hello"),
    ("two_cl_same", b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    ("cl_list", b"Content-Length: 5, 5\r\n", b"hello"),
    ("cl_plus", b"Content-Length: +5\r\n", b"hello"),
    ("te_twice", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
     b"0\r\n\r\n"),
    ("te_list", b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"),
    ("te_space_before_colon", b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"),
    ("te_obs_fold", b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n"),
    ("te_unknown", b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
    ("chunk_size_not_hex", b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_0x", b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_negative", b"Transfer-Encoding: chunked\r\n", b"-1\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_overflow", b"Transfer-Encoding: chunked\r\n",
     b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("chunk_ext_bad", b"Transfer-Encoding: chunked\r\n", b"5;a=\"x\r\nhello\r\n0\r\n\r\n"),
    ("chunk_ext_space", b"Transfer-Encoding: chunked\r\n", b"5 ;\r\nhello\r\n0\r\n\r\n"),
    ("chunk_bare_lf", b"Transfer-Encoding: chunked\r\n", b"5\nhello\n0\n\n"),
    ("chunk_data_too_long", b"Transfer-Encoding: chunked\r\n", b"3\r\nhello\r\n0\r\n\r\n"),
    ("chunk_bad_trailer", b"Transfer-Encoding: chunked\r\n",
     b"5\r\nhello\r\n0\r\nno colon here\r\n\r\n"),
]


class HttpSmuggling(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.backend = await hh.start_node_backend(self, "b1")
        self.port = h.free_port()
        self.gw = await self.start_gateway(h.make_config(
            f"127.0.0.1:{self.port}", {"app": [self.backend.address]},
            [{"name": "app", "path": "/", "upstream": "app"}], workers=1))

    async def test_vectors_get_400_and_never_reach_the_upstream(self):
        for name, fields, body in VECTORS:
            with self.subTest(name):
                req = (f"POST /v/{name} HTTP/1.1\r\nHost: a\r\n".encode() + fields + b"\r\n"
                       + body + SMUGGLED)
                r = await hh.raw_request(self.port, req)
                want = 501 if name == "te_unknown" else 400
                self.assertEqual(r.status, want, r.raw)
                self.assertTrue(r.closed, "connection left open after a framing error")
                reason = r.body.decode().strip()
                self.assertTrue(reason and "\n" not in reason, r.body)
                self.assertEqual(h.parse_response_head(r.raw)[2][-1], ("Connection", "close"))
        # Also HTTP/1.0 with a transfer coding (RFC 9112 6.1).
        r = await hh.raw_request(self.port, b"POST /v/http10_te HTTP/1.0\r\nHost: a\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
        self.assertEqual(r.status, 400, r.raw)
        stats = await self.backend.stats_async()
        reached = [q for q in stats["requests"] if q[1].startswith(("/v/", "/smuggled"))]
        self.assertEqual(reached, [], "requests reached the upstream")

    async def test_controls_pass(self):
        for name, fields, body in (
                ("chunked", b"Transfer-Encoding: chunked\r\n",
                 b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"),
                ("content_length", b"Content-Length: 5\r\n", b"hello")):
            with self.subTest(name):
                req = (f"POST /upload?{name} HTTP/1.1\r\nHost: a\r\n".encode() + fields + b"\r\n"
                       + body + b"GET /info?after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                r = await hh.raw_request(self.port, req)
                answers = hh.split_responses(r.raw)
                self.assertEqual([s for s, _, _ in answers], [200, 200], r.raw)
        stats = await self.backend.stats_async()
        self.assertEqual([q for q in stats["requests"]],
                         [["POST", "/upload?chunked"], ["GET", "/info?after"],
                          ["POST", "/upload?content_length"], ["GET", "/info?after"]])


if __name__ == "__main__":
    h.main()
