"""wss:// upstream given by host name with resolve_interval (issue 14 item 4): the members
DNS finds are addresses, but TLS to them still sends the configured name as SNI and
verifies the backend's certificate against that name, not against the address. The
backend is a python3-websockets TLS server named `localhost` (certificate for localhost
only, no IP SAN), found through /etc/hosts by the periodic re-resolution.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_tls_upstream import TlsBackend  # noqa: E402


class TlsUpstreamDnsMembers(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.backend_cert = pki.leaf("backend", cls.ca, ["localhost"])

    async def test_tls_upstream_dns_member_keeps_name_for_sni_and_verification(self):
        tb = TlsBackend(self.backend_cert)
        backend = await self.start_backend(tb.handler(), ssl=tb.ctx)
        port = backend.address.rsplit(":", 1)[1]
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"secure": [f"localhost:{port}"]},
                            [{"path": "/echo", "upstream": "secure", "connect_timeout": "5s"}],
                            upstream_tls={"secure": {"ca": self.ca.cert}})
        text = text.replace('name = "secure"\n', 'name = "secure"\nresolve_interval = "1s"\n', 1)
        gw = await self.start_gateway(text)
        # The name became members (addresses) by DNS.
        await h.wait_until(lambda: f"localhost:{port} resolves to" in gw.stderr_text(), 15,
                           "the resolver's log line for localhost\n" + gw.describe())
        async with h.ws_connect(gw.port) as ws:
            await ws.send("by name")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "by name")
        self.assertEqual(tb.sni, ["localhost"], "SNI the backend saw")
        fields = await gw.wait_access_line(lambda f: f.get("status") == "101", "the relayed one")
        self.assertTrue(fields["upstream"].startswith("127.0.0.1:"), fields)  # an address


if __name__ == "__main__":
    h.main()
