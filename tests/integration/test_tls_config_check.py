"""`wsgate -t FILE` with TLS: every certificate and key is loaded, and unreadable files,
mismatched pairs, expired (or not yet valid) certificates are reported with exit 1 and
FILE:LINE:COLUMN of the entry at fault. `wsgate -c` refuses to start on the same files.

Certificates are generated now by the openssl CLI (the expired one through
`openssl ca -startdate/-enddate`, as OpenSSL 3.0's `x509` cannot backdate).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CONFIG = """\
workers = 1
access_log = "-"

[[listener]]
address = "127.0.0.1:{port}"
[listener.tls]
certificates = [
  {{ cert = "good.pem", key = "good.key" }},
  {{ cert = "{cert}", key = "{key}"{ocsp} }},
]
{listener_extra}
[[upstream]]
name = "echo"
servers = ["127.0.0.1:9"]
{upstream_tls}
[[route]]
path = "/echo"
upstream = "echo"
"""

ENTRY_LINE = 9  # the second element of `certificates` above


class TlsConfigCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="wsgate-tls-pki-")
        pki = h.ThrowawayPki(cls.tmp.name)
        cls.pki = pki
        cls.ca = pki.ca("ca")
        cls.good = pki.leaf("good", cls.ca, ["good.test"])
        cls.other = pki.leaf("other", cls.ca, ["other.test"], key_type="ec")
        cls.expired = pki.expired_leaf("expired", cls.ca, ["old.test"])
        # Not valid before 2099 (same `openssl ca` trick, dates in the future).
        key = pki.path("future.key")
        h.run_tool([h.OPENSSL_BIN, "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key])
        csr = pki.path("future.csr")
        h.run_tool([h.OPENSSL_BIN, "req", "-new", "-config", pki.cnf, "-key", key, "-subj",
                    "/CN=future.test", "-out", csr])
        cls.future_cert, cls.future_key = pki.path("future.pem"), key
        h.run_tool([h.OPENSSL_BIN, "ca", "-batch", "-config", pki.cnf, "-cert", cls.ca.cert,
                    "-keyfile", cls.ca.key, "-startdate", "20990101000000Z", "-enddate",
                    "20990201000000Z", "-in", csr, "-out", cls.future_cert, "-notext"])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        h.require_wsgate(self)
        self.dir = self.enterContext(tempfile.TemporaryDirectory(prefix="wsgate-tls-conf-"))
        # The config refers to files relative to its own folder.
        for src, name in ((self.good.cert, "good.pem"), (self.good.key, "good.key"),
                          (self.other.cert, "other.pem"), (self.other.key, "other.key"),
                          (self.expired.cert, "expired.pem"), (self.expired.key, "expired.key"),
                          (self.future_cert, "future.pem"), (self.future_key, "future.key"),
                          (self.ca.cert, "ca.pem")):
            shutil.copyfile(src, os.path.join(self.dir, name))
        with open(os.path.join(self.dir, "garbage.pem"), "w") as f:
            f.write("this is not a certificate\n")
        with open(os.path.join(self.dir, "staple.der"), "wb") as f:
            f.write(b"\x30\x03\x0a\x01\x00")  # an OCSP response's shape; stapled as given

    def write(self, cert="other.pem", key="other.key", ocsp=None, listener_extra="",
              upstream_tls="", name="wsgate.toml"):
        text = CONFIG.format(port=h.free_port(), cert=cert, key=key,
                             ocsp=f', ocsp = "{ocsp}"' if ocsp else "",
                             listener_extra=listener_extra, upstream_tls=upstream_tls)
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        self.text = text
        return path

    def run_wsgate(self, *args, timeout=30):
        proc = subprocess.run([h.WSGATE_BIN, *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd="/")
        self.assertTrue(h.sanitizer_free(proc.stderr), proc.stderr)
        return proc

    def expect_error(self, path, line, mentions, column=None):
        proc = self.run_wsgate("-t", path)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertNotIn("configuration ok", proc.stderr)
        m = re.search(re.escape(path) + r":(\d+):(\d+): (.+)", proc.stderr)
        self.assertIsNotNone(m, f"no FILE:LINE:COLUMN message in {proc.stderr!r}")
        self.assertEqual(int(m.group(1)), line, f"wrong line in {proc.stderr!r}")
        if column is not None:
            self.assertEqual(int(m.group(2)), column, f"wrong column in {proc.stderr!r}")
        else:
            self.assertGreaterEqual(int(m.group(2)), 1)
        for word in mentions:
            self.assertIn(word, m.group(3), f"message should mention {word!r}")
        return proc

    def entry_column(self):
        return self.text.splitlines()[ENTRY_LINE - 1].index("{") + 1

    def test_tls_check_good_config_ok(self):
        path = self.write(ocsp="staple.der", listener_extra=(
            'min_version = "TLSv1.3"\nclient_ca = "ca.pem"\nclient_auth = "optional"\n'),
            upstream_tls='[upstream.tls]\nca = "ca.pem"\nserver_name = "backend.test"\n'
                         'cert = "good.pem"\nkey = "good.key"\n')
        proc = self.run_wsgate("-t", path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"{path}: configuration ok", proc.stderr)

    def test_tls_check_key_mismatch(self):
        path = self.write(cert="other.pem", key="good.key")
        self.expect_error(path, ENTRY_LINE, ["good.key", "does not match", "other.pem"],
                          column=self.entry_column())

    def test_tls_check_unreadable_certificate(self):
        path = self.write(cert="missing.pem", key="other.key")
        self.expect_error(path, ENTRY_LINE, ["missing.pem"], column=self.entry_column())

    def test_tls_check_unreadable_key(self):
        path = self.write(cert="other.pem", key="missing.key")
        self.expect_error(path, ENTRY_LINE, ["missing.key"], column=self.entry_column())

    def test_tls_check_not_a_certificate(self):
        path = self.write(cert="garbage.pem", key="other.key")
        self.expect_error(path, ENTRY_LINE, ["garbage.pem"], column=self.entry_column())

    def test_tls_check_expired_certificate(self):
        path = self.write(cert="expired.pem", key="expired.key")
        proc = self.expect_error(path, ENTRY_LINE, ["expired.pem", "expired"],
                                 column=self.entry_column())
        self.assertIn("2020", proc.stderr, "the message should say when it expired")

    def test_tls_check_not_yet_valid_certificate(self):
        path = self.write(cert="future.pem", key="future.key")
        self.expect_error(path, ENTRY_LINE, ["future.pem"], column=self.entry_column())

    def test_tls_check_unreadable_ocsp_file(self):
        path = self.write(ocsp="missing.der")
        self.expect_error(path, ENTRY_LINE, ["missing.der"], column=self.entry_column())

    def test_tls_check_unreadable_client_ca(self):
        path = self.write(listener_extra='client_ca = "missing-ca.pem"\nclient_auth = "required"\n')
        self.expect_error(path, 6, ["missing-ca.pem"])  # the [listener.tls] table

    def test_tls_check_upstream_unreadable_ca(self):
        path = self.write(upstream_tls='[upstream.tls]\nca = "missing-ca.pem"\n')
        line = self.text.splitlines().index("[upstream.tls]") + 1
        self.expect_error(path, line, ["missing-ca.pem"])

    def test_tls_check_upstream_client_key_mismatch(self):
        path = self.write(upstream_tls='[upstream.tls]\ncert = "good.pem"\nkey = "other.key"\n')
        line = self.text.splitlines().index("[upstream.tls]") + 1
        self.expect_error(path, line, ["does not match"])

    def test_tls_check_paths_relative_to_config_folder(self):
        # Run from "/" with the config elsewhere: relative names still resolve.
        path = self.write(cert="other.pem", key="other.key")
        proc = self.run_wsgate("-t", path)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_tls_start_refuses_expired_certificate(self):
        path = self.write(cert="expired.pem", key="expired.key")
        proc = self.run_wsgate("-c", path)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("expired", proc.stderr)
        self.assertIn(f"{path}:{ENTRY_LINE}:", proc.stderr)


if __name__ == "__main__":
    h.main()
