"""TLS session resumption stays inside its scope (issue 14 item 1): a session made on a
listener without client certificates must not resume on one with client_auth =
"required" (that would skip the certificate), and a session made under one client CA
must not resume after a reload removed that CA. Checked with `openssl s_client`
-sess_out / -sess_in ("Reused" vs "New"), by session id (TLS 1.2 -no_ticket), TLS 1.2
ticket and TLS 1.3 ticket. A resumption on the same listener still works (control).
"""

import os
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402

HTTP_GET = b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
MODES = (("TLS 1.2 session id", ["-tls1_2", "-no_ticket"]),
         ("TLS 1.2 ticket", ["-tls1_2"]),
         ("TLS 1.3 ticket", ["-tls1_3"]))


class ResumptionScope(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.server = pki.leaf("a", cls.ca, ["a.test"])
        cls.client_ca = pki.ca("client-ca", cn="wsgate client CA")
        cls.client = pki.leaf("client", cls.client_ca, [], cn="client.test", usage="client")
        cls.other_ca = pki.ca("other-ca", cn="another client CA")

    def config(self, client_ca):
        certs = h.toml_inline([{"cert": self.server.cert, "key": self.server.key}])
        return (f"workers = 2\naccess_log = \"-\"\n\n"
                f"[[listener]]\nname = \"open\"\naddress = \"127.0.0.1:{self.open_port}\"\n"
                f"[listener.tls]\ncertificates = {certs}\n\n"
                f"[[listener]]\nname = \"mtls\"\naddress = \"127.0.0.1:{self.mtls_port}\"\n"
                f"[listener.tls]\ncertificates = {certs}\n"
                f"client_ca = {h.toml_value(client_ca)}\nclient_auth = \"required\"\n\n"
                f"[[upstream]]\nname = \"echo\"\nservers = [\"{self.backend.address}\"]\n\n"
                f"[[route]]\npath = \"/echo\"\nupstream = \"echo\"\n")

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-tls-scope-")
        self.addCleanup(self.tmp.cleanup)
        self.backend = await self.start_backend()
        self.open_port, self.mtls_port = h.free_port(), h.free_port()
        self.gw = await self.start_gateway(self.config(self.client_ca.cert),
                                           listen=("127.0.0.1", self.open_port))

    async def s_client(self, port, args, cert=None):
        if cert is not None:
            args = [*args, "-cert", cert.cert, "-key", cert.key]
        return await h.s_client_async(port, servername="a.test", ca=self.ca.cert, args=args,
                                      send=HTTP_GET)

    async def session(self, port, args, what, cert=None):
        """A fresh session from a full handshake on `port`, saved to a file."""
        sess = os.path.join(self.tmp.name, f"{port}-{len(os.listdir(self.tmp.name))}.pem")
        r = await self.s_client(port, [*args, "-sess_out", sess], cert)
        self.assertTrue(r.handshake_done and not r.reused, f"{what}: {r.out[-3000:]}")
        self.assertIn("HTTP/1.1 426", r.out, f"{what}: no answer:\n{r.out[-3000:]}")
        self.assertTrue(os.path.exists(sess) and os.path.getsize(sess) > 0,
                        f"{what}: s_client saved no session:\n{r.out[-3000:]}")
        return sess

    async def test_tls_session_from_open_listener_does_not_resume_on_client_auth_listener(self):
        for what, args in MODES:
            with self.subTest(what):
                sess = await self.session(self.open_port, args, what)
                # Control: the same listener resumes it.
                same = await self.s_client(self.open_port, [*args, "-sess_in", sess])
                self.assertTrue(same.reused, f"{what}: no resumption on the same listener:\n"
                                             f"{same.out[-3000:]}")
                # The client_auth = "required" listener: a full handshake, which needs a
                # certificate the client does not have, so no answer.
                other = await self.s_client(self.mtls_port, [*args, "-sess_in", sess])
                self.assertFalse(other.reused, f"{what}: resumed on the client_auth listener "
                                               f"without a certificate:\n{other.out[-3000:]}")
                self.assertNotIn("HTTP/1.1", other.out, f"{what}: answered without a "
                                                        f"certificate:\n{other.out[-3000:]}")
        self.assertEqual(self.backend.conns, [])

    async def test_tls_session_of_a_connection_without_request_resumes_by_id(self):
        # A client that completes the handshake and closes before sending a request: the
        # gateway ends the TLS session with close_notify (RFC 8446 6.1), so OpenSSL keeps
        # it in the cache and the next connection resumes by session ID (before: "New").
        sess = os.path.join(self.tmp.name, "no-request.pem")
        first = await h.s_client_async(self.open_port, servername="a.test", ca=self.ca.cert,
                                       args=["-tls1_2", "-no_ticket", "-sess_out", sess])
        self.assertTrue(first.handshake_done and not first.reused, first.out[-3000:])
        again = await self.s_client(self.open_port, ["-tls1_2", "-no_ticket", "-sess_in", sess])
        self.assertTrue(again.reused, f"not resumed by session ID:\n{again.out[-3000:]}")

    async def test_tls_reload_removing_client_ca_ends_resumption_at_once(self):
        sessions = {}
        for what, args in MODES:
            sessions[what] = await self.session(self.mtls_port, args, what, cert=self.client)
            again = await self.s_client(self.mtls_port, [*args, "-sess_in", sessions[what]])
            self.assertTrue(again.reused, f"{what}: control: no resumption before the reload:"
                                          f"\n{again.out[-3000:]}")
        rh.write_config(self.gw, self.config(self.other_ca.cert))
        await rh.sighup(self.gw, rh.RELOADED)
        for what, args in MODES:
            with self.subTest(what):
                # The client certificate's CA is gone: neither resumption nor a full
                # handshake with that certificate may get in.
                r = await self.s_client(self.mtls_port, [*args, "-sess_in", sessions[what]],
                                        cert=self.client)
                self.assertFalse(r.reused, f"{what}: resumed after its CA was removed:\n"
                                           f"{r.out[-3000:]}")
                self.assertNotIn("HTTP/1.1", r.out, f"{what}: answered:\n{r.out[-3000:]}")


if __name__ == "__main__":
    h.main()
