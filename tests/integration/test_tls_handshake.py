"""TLS listener, seen by `openssl s_client`: which certificate is served (SNI against
SAN/CN, exact before wildcard, the first certificate as default; RSA and ECDSA for the
same names side by side), ALPN, protocol versions, cipher settings, OCSP stapling and
session resumption (session cache and tickets, TLS 1.2 and 1.3).

Every certificate is generated now by the openssl CLI into a temporary folder.
"""

import os
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# A plain request after the handshake: the gateway answers 426 and closes, so s_client
# (-ign_eof) reads everything the server sends, TLS 1.3 session tickets included.
HTTP_GET = b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"


class Pki:
    """One PKI per test class (RSA keygen is the slow part)."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-tls-pki-")
        pki = h.ThrowawayPki(self.tmp.name)
        self.pki = pki
        self.ca = pki.ca("ca")
        self.default = pki.leaf("default", self.ca, ["default.test"])
        self.wild = pki.leaf("wild", self.ca, ["*.wild.test"])
        self.exact_wild = pki.leaf("exact-wild", self.ca, ["exact.wild.test"])
        self.a_rsa = pki.leaf("a-rsa", self.ca, ["a.test"])
        self.a_ec = pki.leaf("a-ec", self.ca, ["a.test"], key_type="ec")
        self.b = pki.leaf("b", self.ca, ["b.test", "b-alt.test"], key_type="ec")
        self.cn_only = pki.leaf("cn-only", self.ca, [], cn="cn-only.test")
        # An OCSP response for b.test, signed by the CA (status "unknown" is fine: the
        # gateway staples the bytes it was given).
        req = pki.path("b.ocsp-req.der")
        self.b_ocsp = pki.path("b.ocsp.der")
        h.run_tool([h.OPENSSL_BIN, "ocsp", "-issuer", self.ca.cert, "-cert", self.b.cert,
                    "-reqout", req, "-no_nonce"])
        h.run_tool([h.OPENSSL_BIN, "ocsp", "-index", pki.path("index.txt"), "-rsigner",
                    self.ca.cert, "-rkey", self.ca.key, "-CA", self.ca.cert, "-reqin", req,
                    "-respout", self.b_ocsp, "-ndays", "1"])

    def certificates(self):
        # Default first; the wildcard before the exact name it covers, so "exact before
        # wildcard" cannot be an accident of order.
        entries = [self.default, self.wild, self.exact_wild, self.a_rsa, self.a_ec, self.b,
                   self.cn_only]
        out = [{"cert": c.cert, "key": c.key} for c in entries]
        out[entries.index(self.b)]["ocsp"] = self.b_ocsp
        return out

    def close(self):
        self.tmp.cleanup()


class TlsHandshakeBase(h.GatewayCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.p = Pki()

    @classmethod
    def tearDownClass(cls):
        cls.p.close()
        super().tearDownClass()

    async def start_tls_gateway(self, listener=None, **tls):
        backend = await self.start_backend()
        listener_tls = {"certificates": self.p.certificates(), **tls}
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                            [{"path": "/echo", "upstream": "echo"}], listener=listener,
                            listener_tls=listener_tls)
        return await self.start_gateway(text)

    async def connect(self, gw, servername=None, args=(), send=None):
        return await h.s_client_async(gw.port, servername=servername, ca=self.p.ca.cert,
                                      args=args, send=send)

    def assert_served(self, result, expected: h.CertFiles, what: str):
        self.assertTrue(result.handshake_done, f"{what}: handshake failed:\n{result.out[-3000:]}")
        cert = result.peer_cert()
        self.assertEqual(cert["serial"], expected.serial,
                         f"{what}: got {cert}, expected {expected.subject} "
                         f"(serial {expected.serial})")
        self.assertEqual(cert["key_type"], expected.key_type, what)
        self.assertEqual(result.verify_code, 0, f"{what}: chain does not verify:\n{result.out}")


class SniSelection(TlsHandshakeBase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.gw = await self.start_tls_gateway()

    async def test_tls_sni_exact_names(self):
        self.assert_served(await self.connect(self.gw, "default.test"), self.p.default, "default.test")
        # Both names of a two-SAN certificate select it.
        self.assert_served(await self.connect(self.gw, "b.test"), self.p.b, "b.test")
        self.assert_served(await self.connect(self.gw, "b-alt.test"), self.p.b, "b-alt.test")
        got = (await self.connect(self.gw, "a.test")).peer_cert()
        self.assertIn(got["serial"], (self.p.a_rsa.serial, self.p.a_ec.serial), "a.test")

    async def test_tls_sni_is_case_insensitive(self):
        self.assert_served(await self.connect(self.gw, "B-ALT.Test"), self.p.b, "B-ALT.Test")

    async def test_tls_sni_wildcard_covers_one_label(self):
        self.assert_served(await self.connect(self.gw, "x.wild.test"), self.p.wild, "x.wild.test")
        self.assert_served(await self.connect(self.gw, "other.wild.test"), self.p.wild,
                           "other.wild.test")
        # A wildcard stands for exactly one label: neither deeper names nor the bare
        # parent match it; they get the default.
        self.assert_served(await self.connect(self.gw, "deep.x.wild.test"), self.p.default,
                           "deep.x.wild.test")
        self.assert_served(await self.connect(self.gw, "wild.test"), self.p.default, "wild.test")

    async def test_tls_sni_exact_beats_wildcard(self):
        # exact.wild.test is listed after *.wild.test and still wins.
        self.assert_served(await self.connect(self.gw, "exact.wild.test"), self.p.exact_wild,
                           "exact.wild.test")

    async def test_tls_sni_unknown_name_gets_default(self):
        self.assert_served(await self.connect(self.gw, "unknown.test"), self.p.default, "unknown.test")
        self.assert_served(await self.connect(self.gw, "test"), self.p.default, "test")

    async def test_tls_no_sni_gets_default(self):
        self.assert_served(await self.connect(self.gw, None), self.p.default, "no SNI")

    async def test_tls_sni_cn_when_no_san(self):
        # A certificate without DNS SANs is chosen by its CN.
        r = await self.connect(self.gw, "cn-only.test")
        self.assertTrue(r.handshake_done, r.out[-3000:])
        self.assertEqual(r.peer_cert()["serial"], self.p.cn_only.serial)

    async def test_tls13_rsa_and_ecdsa_for_same_name(self):
        ec = await self.connect(self.gw, "a.test", ["-tls1_3", "-sigalgs", "ECDSA+SHA256"])
        self.assert_served(ec, self.p.a_ec, "TLS 1.3, ECDSA-only client")
        self.assertEqual(ec.protocol, "TLSv1.3")
        rsa = await self.connect(self.gw, "a.test", ["-tls1_3", "-sigalgs",
                                               "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384"])
        self.assert_served(rsa, self.p.a_rsa, "TLS 1.3, RSA-only client")
        self.assertEqual(rsa.protocol, "TLSv1.3")

    async def test_tls12_rsa_and_ecdsa_for_same_name(self):
        ec = await self.connect(self.gw, "a.test", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
        self.assert_served(ec, self.p.a_ec, "TLS 1.2, ECDHE-ECDSA cipher")
        self.assertEqual(ec.protocol, "TLSv1.2")
        rsa = await self.connect(self.gw, "a.test", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])
        self.assert_served(rsa, self.p.a_rsa, "TLS 1.2, ECDHE-RSA cipher")
        self.assertEqual(rsa.protocol, "TLSv1.2")

    async def test_tls_ocsp_staple_from_file(self):
        stapled = await self.connect(self.gw, "b.test", ["-status"])
        self.assert_served(stapled, self.p.b, "b.test")
        self.assertTrue("OCSP Response Status: successful" in stapled.out,
                      f"no stapled OCSP response for b.test:\n{stapled.out[-3000:]}")
        plain = await self.connect(self.gw, "default.test", ["-status"])
        self.assert_served(plain, self.p.default, "default.test")
        self.assertTrue("OCSP response: no response sent" in plain.out,
                      "a certificate without an ocsp file must staple nothing")


class VersionsAndAlpn(TlsHandshakeBase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.gw = await self.start_tls_gateway()

    async def test_tls_alpn_prefers_h2_and_accepts_http11(self):
        r = await self.connect(self.gw, "a.test", ["-alpn", "h2,http/1.1"])
        self.assertTrue(r.handshake_done, r.out[-3000:])
        self.assertEqual(r.alpn, "h2", r.out[-3000:])
        r = await self.connect(self.gw, "a.test", ["-alpn", "http/1.1"])
        self.assertEqual(r.alpn, "http/1.1", r.out[-3000:])

    async def test_tls_alpn_without_http2(self):
        gw = await self.start_tls_gateway(listener={"http2": False})
        r = await self.connect(gw, "a.test", ["-alpn", "h2,http/1.1"])
        self.assertTrue(r.handshake_done, r.out[-3000:])
        self.assertEqual(r.alpn, "http/1.1", r.out[-3000:])
        # RFC 7301 3.2: no protocol in common is a fatal no_application_protocol alert.
        r = await self.connect(gw, "a.test", ["-alpn", "h2"])
        self.assertFalse(r.handshake_done, r.out[-3000:])
        self.assertIn("no application protocol", r.out)

    async def test_tls13_and_tls12_succeed(self):
        for flag, version in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
            with self.subTest(version=version):
                r = await self.connect(self.gw, "a.test", [flag])
                self.assertTrue(r.handshake_done, r.out[-3000:])
                self.assertEqual(r.protocol, version)
                self.assertEqual(r.verify_code, 0)
        # No version forced: the best one.
        self.assertEqual((await self.connect(self.gw, "a.test")).protocol, "TLSv1.3")

    async def test_tls11_refused(self):
        # SECLEVEL=0 lets Debian's client really offer TLS 1.1 (at the default level it
        # would refuse on its own and the test would prove nothing): the refusal must be
        # the server's protocol_version alert.
        r = await self.connect(self.gw, "a.test", ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertFalse(r.handshake_done, r.out[-3000:])
        self.assertNotEqual(r.rc, 0)
        self.assertTrue("alert protocol version" in r.out, r.out[-3000:])
        await h.wait_until(lambda: any("unsupported protocol" in ln for ln in
                                       h.tls_failure_lines(self.gw.stderr_text())),
                           10, "the refused TLS 1.1 handshake in wsgate's log")
        # And it keeps serving.
        self.assertTrue((await self.connect(self.gw, "a.test")).handshake_done)

    async def test_tls13_default_suites_prefer_aes128_gcm(self):
        # The server's order (Mozilla's intermediate) decides, not the client's: OpenSSL's
        # client lists TLS_AES_256_GCM_SHA384 first.
        r = await self.connect(self.gw, "a.test", ["-tls1_3"])
        self.assertTrue("Cipher is TLS_AES_128_GCM_SHA256" in r.out, r.out[-3000:])
        for suite in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"):
            with self.subTest(suite=suite):
                r = await self.connect(self.gw, "a.test", ["-tls1_3", "-ciphersuites", suite])
                self.assertTrue(f"Cipher is {suite}" in r.out, r.out[-3000:])

    async def test_tls12_default_ciphers_are_forward_secret_aead(self):
        # The default TLS 1.2 list has no static-RSA or CBC suites.
        for cipher in ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"):
            with self.subTest(cipher=cipher):
                r = await self.connect(self.gw, "a.test",
                                 ["-tls1_2", "-cipher", cipher + "@SECLEVEL=0"])
                self.assertFalse(r.handshake_done, f"{cipher} was accepted:\n{r.out[-3000:]}")
                self.assertTrue("handshake failure" in r.out, r.out[-3000:])


class ListenerSettings(TlsHandshakeBase):
    async def test_tls_min_version_13_refuses_tls12(self):
        gw = await self.start_tls_gateway(min_version="TLSv1.3")
        r = await self.connect(gw, "a.test", ["-tls1_2"])
        self.assertFalse(r.handshake_done, r.out[-3000:])
        self.assertTrue("alert protocol version" in r.out, r.out[-3000:])
        ok = await self.connect(gw, "a.test", ["-tls1_3"])
        self.assertTrue(ok.handshake_done, ok.out[-3000:])
        self.assertEqual(ok.protocol, "TLSv1.3")

    async def test_tls_ciphers_and_ciphersuites_settings(self):
        gw = await self.start_tls_gateway(ciphers="ECDHE-RSA-AES256-GCM-SHA384",
                                          ciphersuites="TLS_CHACHA20_POLY1305_SHA256")
        r = await self.connect(gw, "a.test", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])
        self.assertFalse(r.handshake_done, f"a cipher outside `ciphers` was used:\n{r.out}")
        r = await self.connect(gw, "a.test", ["-tls1_2"])
        self.assertTrue(r.handshake_done, r.out[-3000:])
        self.assertTrue("Cipher is ECDHE-RSA-AES256-GCM-SHA384" in r.out, r.out[-3000:])
        r = await self.connect(gw, "a.test", ["-tls1_3"])
        self.assertTrue(r.handshake_done, r.out[-3000:])
        self.assertTrue("Cipher is TLS_CHACHA20_POLY1305_SHA256" in r.out, r.out[-3000:])


class Resumption(TlsHandshakeBase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.gw = await self.start_tls_gateway()
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-tls-sess-")
        self.addCleanup(self.tmp.cleanup)

    async def resume(self, args, what):
        sess = os.path.join(self.tmp.name, "session.pem")
        first = await self.connect(self.gw, "a.test", [*args, "-sess_out", sess], send=HTTP_GET)
        self.assertTrue(first.handshake_done, f"{what}: {first.out[-3000:]}")
        self.assertFalse(first.reused, f"{what}: the first handshake cannot be a resumption")
        self.assertTrue("426" in first.out, f"{what}: no answer to the request:\n{first.out}")
        self.assertTrue(os.path.exists(sess) and os.path.getsize(sess) > 0,
                        f"{what}: s_client saved no session:\n{first.out[-3000:]}")
        second = await self.connect(self.gw, "a.test", [*args, "-sess_in", sess], send=HTTP_GET)
        self.assertTrue(second.handshake_done, f"{what}: {second.out[-3000:]}")
        self.assertTrue(second.reused, f"{what}: session not resumed:\n{second.out[-3000:]}")
        self.assertTrue("426" in second.out, f"{what}: resumed connection did not work")
        return first, second

    async def test_tls12_resumption_with_session_id_cache(self):
        # -no_ticket: only the server's session cache can resume this.
        first, second = await self.resume(["-tls1_2", "-no_ticket"], "TLS 1.2 session id")
        self.assertEqual(second.protocol, "TLSv1.2")
        self.assertFalse("TLS session ticket:" in first.out, "a ticket was issued despite -no_ticket")

    async def test_tls12_resumption_with_ticket(self):
        first, second = await self.resume(["-tls1_2"], "TLS 1.2 ticket")
        self.assertEqual(second.protocol, "TLSv1.2")
        self.assertTrue("TLS session ticket:" in first.out, "no ticket was issued")

    async def test_tls13_resumption_with_ticket(self):
        first, second = await self.resume(["-tls1_3"], "TLS 1.3 ticket")
        self.assertEqual(second.protocol, "TLSv1.3")
        # One ticket per full handshake (OpenSSL's default is two).
        tickets = first.out.count("Post-Handshake New Session Ticket arrived")
        self.assertEqual(tickets, 1, f"{tickets} tickets:\n{first.out[-3000:]}")

    async def test_tls13_resumption_works_on_another_connection_after_many(self):
        # Sessions survive across workers and connections: ten resumptions in a row.
        sess = os.path.join(self.tmp.name, "s13.pem")
        first = await self.connect(self.gw, "a.test", ["-tls1_3", "-sess_out", sess], send=HTTP_GET)
        self.assertTrue(first.handshake_done, first.out[-3000:])
        reused = 0
        for _ in range(10):
            r = await self.connect(self.gw, "a.test", ["-tls1_3", "-sess_in", sess], send=HTTP_GET)
            reused += r.reused
        self.assertEqual(reused, 10, "some TLS 1.3 resumptions fell back to full handshakes")


if __name__ == "__main__":
    h.main()
