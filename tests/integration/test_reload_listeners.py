"""A reload that adds one listener and removes another: the new port accepts at once,
the removed port refuses new connections, and a WebSocket established through the
removed listener keeps working. The listener that stays keeps its sockets (no accept
gap): a client connecting in a loop while the reload happens is never refused; its
changed options (here max_header_bytes) apply to new requests."""

import asyncio
import os
import socket
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import reload_helpers as rh  # noqa: E402


def refuses(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


class ReloadListeners(h.GatewayCase):
    async def echo(self, ws, text):
        await ws.send(text)
        self.assertEqual(await asyncio.wait_for(ws.recv(), 10), text)

    async def test_listener_added_and_removed_by_reload(self):
        backend = await self.start_backend()
        kept, removed, added = h.free_port(), h.free_port(), h.free_port()

        def config(extra, listener=None):
            return h.make_config(f"127.0.0.1:{kept}", {"echo": [backend.address]},
                                 [{"host": "*", "path": "/echo", "upstream": "echo"}],
                                 extra_listeners=[f"127.0.0.1:{extra}"], listener=listener)

        big_head = h.upgrade_request(extra=[("X-Padding", "p" * 3000)])

        gw = await self.start_gateway(config(removed))
        self.assertTrue(refuses(added))

        # Connects to the listener that stays, as fast as it can, during the reload.
        refused = []
        accepted = 0
        stop = asyncio.Event()

        async def knock():
            nonlocal accepted
            for _ in range(100000):
                if stop.is_set():
                    return
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", kept)
                    accepted += 1
                    writer.close()
                    await writer.wait_closed()
                except ConnectionRefusedError as e:
                    refused.append(e)
                await asyncio.sleep(0.002)

        async with h.ws_connect(removed, "/echo") as through_removed, \
                h.ws_connect(kept, "/echo") as through_kept:
            await self.echo(through_removed, "before")
            knocker = asyncio.create_task(knock())
            resp = await h.http_exchange("127.0.0.1", kept, big_head, timeout=1.0)
            self.assertEqual(resp.status, 101, "a 3 KB head fits the default 16 KiB")
            rh.write_config(gw, config(added, {"max_header_bytes": "1KiB"}))
            line = await rh.sighup(gw, rh.RELOADED)
            self.assertIn(f"opened 127.0.0.1:{added}", line)
            self.assertIn(f"closed 127.0.0.1:{removed}", line)
            await h.wait_until(lambda: refuses(removed), 10,
                               f"the removed port {removed} to refuse connections")
            resp = await h.http_exchange("127.0.0.1", kept, big_head)
            self.assertEqual(resp.status, 431, "the kept listener's new limit applies")
            async with h.ws_connect(added, "/echo") as through_added:
                await self.echo(through_added, "through the new listener")
            for i in range(20):
                await self.echo(through_removed, f"after {i}")
                await self.echo(through_kept, f"kept {i}")
            stop.set()
            await knocker
        self.assertEqual(refused, [], "the kept listener refused a connection")
        self.assertGreater(accepted, 0)
        self.assertTrue(refuses(removed))
        removed_conn = [c for c in backend.conns if c.messages and c.messages[0] == "before"]
        self.assertEqual(len(removed_conn), 1)
        await backend.wait_done(removed_conn[0])
        self.assertEqual(removed_conn[0].messages, ["before"] + [f"after {i}" for i in range(20)])
        self.assertEqual(removed_conn[0].close_code, 1000)


if __name__ == "__main__":
    h.main()
