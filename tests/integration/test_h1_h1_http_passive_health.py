"""HTTP/1.1 client -> two HTTP/1.1 upstream servers: passive health counts the servers'
gateway failures (issue 15; eject_after_failures). A forwarded response with status 502,
503 or 504 counts as a failure of the server that sent it (RFC 9110 15.6.3-15.6.5), any
other status resets its count: the server that keeps answering 503 is ejected and the
traffic goes to the other one; one that answers 500 is not.
"""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import http_helpers as hh  # noqa: E402

FAILURES = 3


class PassiveHealthHttp(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        hh.require_tools(self)
        self.b1 = await hh.start_node_backend(self, "b1")
        self.b2 = await hh.start_node_backend(self, "b2")
        self.port = h.free_port()
        text = (f'workers = 1\naccess_log = "-"\n\n'
                f'[[listener]]\naddress = "127.0.0.1:{self.port}"\n\n'
                f'[[upstream]]\nname = "app"\n'
                f'servers = ["{self.b1.address}", "{self.b2.address}"]\n'
                f'balancer = "round_robin"\neject_after_failures = {FAILURES}\n'
                f'eject_duration = "60s"\n\n'
                f'[[route]]\npath = "/"\nupstream = "app"\n')
        self.gw = await self.start_gateway(text)

    async def get(self, query):
        p = await hh.curl("-s", "-o", "-", "-w", "\\n%{http_code}",
                          f"http://127.0.0.1:{self.port}/status?{query}")
        self.assertEqual(p.returncode, 0, p.stderr)
        body, _, code = p.stdout.rpartition(b"\n")
        return int(code), json.loads(body)["server"]

    async def test_server_answering_503_is_ejected_and_the_other_takes_the_traffic(self):
        seen = [await self.get("code=503&only=b1") for _ in range(4 * FAILURES)]
        to_b1 = [s for s in seen if s == (503, "b1")]
        self.assertEqual(len(to_b1), FAILURES, seen)  # then ejected: nothing more reaches it
        self.assertEqual(seen[-FAILURES:], [(200, "b2")] * FAILURES, seen)
        await h.wait_until(lambda: "ejected" in self.gw.stderr_text(), 10, "the ejection log")
        self.assertIn(f"{self.b1.address} ejected", self.gw.stderr_text())
        self.assertIn("(last: answered 503)", self.gw.stderr_text())

    async def test_other_statuses_reset_the_count(self):
        # Round robin sends b1 every other request; both requests of a pair carry the same
        # code, so b1 answers 503, 503, 500, 503, 503, 500, ... whichever it gets: two
        # gateway failures in a row at most, each run ended by a 500, never ejected.
        pattern = [503, 503, 500]
        seen = [await self.get(f"code={pattern[(i // 2) % 3]}&only=b1")
                for i in range(6 * FAILURES)]
        self.assertEqual([c for c, s in seen if s == "b1"], pattern * FAILURES, seen)
        self.assertEqual(sum(1 for c, s in seen if s == "b2"), 3 * FAILURES, seen)
        self.assertNotIn("ejected", self.gw.stderr_text())

if __name__ == "__main__":
    h.main()
