"""SIGHUP reloads the config, and with it the TLS listener's certificates from the same files: new handshakes
get the new certificate, established wss connections carry on untouched, and a broken
replacement (a key that does not match) is reported while the old certificate stays.

The certificate paths in the config are relative: they resolve against the config
file's folder. Certificates are generated now by the openssl CLI.
"""

import asyncio
import os
import shutil
import signal
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

RELOADED = "configuration reloaded"
NOT_RELOADED = "configuration not reloaded"


class CertificateReload(h.PkiCase):
    @classmethod
    def make_certificates(cls, pki):
        cls.ca = pki.ca("ca")
        cls.v1 = pki.leaf("v1", cls.ca, ["a.test"], org="generation one")
        cls.v2 = pki.leaf("v2", cls.ca, ["a.test"], org="generation two")
        cls.v3 = pki.leaf("v3", cls.ca, ["a.test"], org="generation three", key_type="ec")

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend()
        text = h.tls_config(f"127.0.0.1:{h.free_port()}", {"echo": [self.backend.address]},
                            [{"path": "/echo", "upstream": "echo"}],
                            listener_tls={"certificates": [{"cert": "live.pem",
                                                            "key": "live.key"}]})
        gw = h.Gateway(text)
        self.gw = gw
        self.install(self.v1.cert, self.v1.key)
        await gw.start_async()
        self.addAsyncCleanup(self._stop_gateway, gw)
        self.ctx = h.client_ssl_context(self.ca.cert)

    def install(self, cert: str, key: str) -> None:
        """Puts cert/key in place as live.pem/live.key, each file replaced atomically."""
        for src, name in ((cert, "live.pem"), (key, "live.key")):
            tmp = os.path.join(self.gw.dir, name + ".new")
            shutil.copyfile(src, tmp)
            os.replace(tmp, os.path.join(self.gw.dir, name))

    def count(self, needle: str) -> int:
        return self.gw.stderr_text().count(needle)

    async def sighup_and_wait(self, needle: str) -> str:
        before = self.count(needle)
        self.gw.send_signal(signal.SIGHUP)
        await h.wait_until(lambda: self.count(needle) > before, 10,
                           f"'{needle}' in wsgate's log after SIGHUP")
        return [ln for ln in self.gw.stderr_text().splitlines() if needle in ln][-1]

    async def served_serial(self) -> int:
        r = await h.s_client_async(self.gw.port, servername="a.test", ca=self.ca.cert)
        self.assertTrue(r.handshake_done, r.out[-3000:])
        self.assertEqual(r.verify_code, 0, r.out[-3000:])
        return r.peer_cert()["serial"]

    async def echo(self, ws, text: str) -> None:
        await ws.send(text)
        self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)

    def serial_of_connection(self, ws) -> int:
        der = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        import ssl
        return h.cert_info(ssl.DER_cert_to_PEM_cert(der))["serial"]

    async def test_tls_sighup_swaps_certificate_established_connection_keeps_echoing(self):
        self.assertEqual(await self.served_serial(), self.v1.serial)
        async with h.wss_connect(self.gw.port, self.ctx, "a.test") as old:
            await self.echo(old, "before reload")
            self.assertEqual(self.serial_of_connection(old), self.v1.serial)

            self.install(self.v2.cert, self.v2.key)
            await self.sighup_and_wait(RELOADED)
            self.assertEqual(await self.served_serial(), self.v2.serial,
                             "a new handshake after SIGHUP still got the old certificate")
            async with h.wss_connect(self.gw.port, self.ctx, "a.test") as new:
                self.assertEqual(self.serial_of_connection(new), self.v2.serial)
                await self.echo(new, "new connection")

            # The established connection is untouched, in both directions.
            await self.echo(old, "after reload")
            await self.echo(old, os.urandom(70000))

            # A second reload (to an ECDSA certificate) works the same way.
            self.install(self.v3.cert, self.v3.key)
            await self.sighup_and_wait(RELOADED)
            self.assertEqual(await self.served_serial(), self.v3.serial)
            await self.echo(old, "after the second reload")
        self.assertEqual(self.backend.conns[0].messages[:2], ["before reload", "after reload"])
        self.assertFalse(self.gw.proc.poll() is not None, "wsgate exited after SIGHUP")

    async def test_tls_sighup_with_mismatched_key_keeps_old_certificate(self):
        async with h.wss_connect(self.gw.port, self.ctx, "a.test") as old:
            await self.echo(old, "before")
            # The new certificate with the old key: they do not belong together.
            self.install(self.v2.cert, self.v1.key)
            line = await self.sighup_and_wait(NOT_RELOADED)
            self.assertIn("does not match", line)
            self.assertIn("live.pem", line)
            self.assertNotIn(RELOADED, self.gw.stderr_text().replace(NOT_RELOADED, ""))
            self.assertEqual(await self.served_serial(), self.v1.serial,
                             "a broken replacement must leave the old certificate in use")
            async with h.wss_connect(self.gw.port, self.ctx, "a.test") as new:
                await self.echo(new, "still served")
                self.assertEqual(self.serial_of_connection(new), self.v1.serial)
            await self.echo(old, "after the failed reload")

            # Fixed files: the next SIGHUP takes them.
            self.install(self.v2.cert, self.v2.key)
            await self.sighup_and_wait(RELOADED)
            self.assertEqual(await self.served_serial(), self.v2.serial)
            await self.echo(old, "after the good reload")

    async def test_tls_sighup_with_missing_file_keeps_old_certificate(self):
        os.remove(os.path.join(self.gw.dir, "live.key"))
        line = await self.sighup_and_wait(NOT_RELOADED)
        self.assertIn("live.key", line)
        self.assertEqual(await self.served_serial(), self.v1.serial)
        async with h.wss_connect(self.gw.port, self.ctx, "a.test") as ws:
            await self.echo(ws, "still served")


if __name__ == "__main__":
    h.main()
