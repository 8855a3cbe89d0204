"""The built-in dashboard at the admin "/" loads in headless Chromium and shows the live
connection count (non-zero while connections are open) and the connection table.
The test saves a screenshot: $WSGATE_ARTIFACT_DIR (or the working directory, the build
directory under ctest)/dashboard-<binary>.png.
"""

import asyncio
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_DEADLINE = 90.0
N_CONNS = 3


async def run_chromium(args: list[str]) -> str:
    """Runs headless Chromium with `args`, returns stdout; killed by PID at the deadline."""
    profile = tempfile.mkdtemp(prefix="wsgate-chromium-")
    try:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), CHROMIUM_DEADLINE)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"chromium did not finish within {CHROMIUM_DEADLINE}s")
        if proc.returncode != 0:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        return out.decode(errors="replace")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class AdminDashboard(h.GatewayCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        if not h.have_binary(CHROMIUM):
            self.skipTest(f"chromium not installed at {CHROMIUM} "
                          "(scripts/install-deps.sh test installs it)")

    async def test_dashboard_shows_live_connections(self):
        backend = await self.start_backend(compression=None)
        admin_port = h.free_port()
        text = h.simple_config(h.free_port(), [backend.address])
        gw = await self.start_gateway(ac.with_admin(text, admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        url = f"http://127.0.0.1:{admin_port}/"

        conns = [await h.ws_connect(gw.port, compression=None).__aenter__()
                 for _ in range(N_CONNS)]
        try:
            for ws in conns:
                await ws.send("hello dashboard")
                await asyncio.wait_for(ws.recv(), 10)
            # The page polls /metrics and /connections; Chromium's virtual time lets
            # it run its first poll (and more) before the DOM is dumped.
            dom = await run_chromium(["--virtual-time-budget=5000", "--dump-dom", url])
            m = re.search(r'id="active" data-updated="1">(\d+)<', dom)
            self.assertIsNotNone(m, f"live count not rendered; DOM tail: {dom[-1500:]}")
            self.assertEqual(int(m.group(1)), N_CONNS)
            for ws in conns:
                self.assertIn(f"<td>127.0.0.1:{ws.local_address[1]}</td>", dom,
                              "connection table row missing")

            out_dir = os.environ.get("WSGATE_ARTIFACT_DIR") or os.getcwd()
            shot = os.path.join(out_dir, f"dashboard-{os.path.basename(h.WSGATE_BIN)}.png")
            if os.path.exists(shot):
                os.unlink(shot)
            await run_chromium(["--virtual-time-budget=5000", "--window-size=1280,900",
                                f"--screenshot={shot}", url])
            with open(shot, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", "not a PNG")
            self.assertGreater(os.path.getsize(shot), 10_000)
            print(f"dashboard screenshot: {shot}", file=sys.stderr)
        finally:
            for ws in conns:
                await ws.close()

        # After the close the page shows zero.
        await admin.wait_metrics(lambda m: m.value("wsgate_connections_active") == 0,
                                 "connections to end")
        dom = await run_chromium(["--virtual-time-budget=3000", "--dump-dom", url])
        self.assertRegex(dom, r'id="active" data-updated="1">0<')


if __name__ == "__main__":
    h.main()
