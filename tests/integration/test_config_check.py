"""`wsgate -t FILE` / `--check-config FILE`: validate a config and exit.

Exit 0 with "FILE: configuration ok" on stderr, or exit 1 with "file:line:column:
message" pointing at the offending spot. `wsgate -c` refuses to start on a bad config.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

GOOD = """\
workers = 2
drain_timeout = "10s"
access_log = "-"

[[listener]]
address = "127.0.0.1:{port}"
max_header_bytes = "16KiB"
max_headers = 100
handshake_timeout = "10s"

[[upstream]]
name = "echo"
servers = ["127.0.0.1:9001", "127.0.0.1:9002"]

[[route]]
host = "*"
path = "/echo"
upstream = "echo"
allowed_origins = ["https://good.example"]
max_message_size = "16MiB"
buffer_size = "256KiB"
connect_timeout = "5s"
upstream_handshake_timeout = "10s"
idle_timeout = "5m"
"""


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError(needle)


class ConfigCheck(unittest.TestCase):
    def setUp(self):
        h.require_wsgate(self)
        self.dir = self.enterContext(tempfile.TemporaryDirectory(prefix="wsgate-conf-"))

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_wsgate(self, *args, timeout=30):
        proc = subprocess.run([h.WSGATE_BIN, *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        self.assertTrue(h.sanitizer_free(proc.stderr), proc.stderr)
        return proc

    def good_text(self):
        return GOOD.format(port=h.free_port())

    def test_good_config_ok(self):
        path = self.write("good.toml", self.good_text())
        for flag in ("-t", "--check-config"):
            with self.subTest(flag=flag):
                proc = self.run_wsgate(flag, path)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertIn(f"{path}: configuration ok", proc.stderr)

    def test_check_does_not_bind(self):
        # -t validates only: it succeeds even while something else holds the port.
        import socket
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            path = self.write("held.toml", GOOD.format(port=port))
            proc = self.run_wsgate("-t", path)
            self.assertEqual(proc.returncode, 0, proc.stderr)

    def expect_error(self, name: str, text: str, line: int, mentions=()):
        path = self.write(name, text)
        proc = self.run_wsgate("-t", path)
        self.assertEqual(proc.returncode, 1, f"{name}: {proc.stderr}")
        m = re.search(re.escape(path) + r":(\d+):(\d+): (.+)", proc.stderr)
        self.assertIsNotNone(m, f"{name}: no file:line:column message in {proc.stderr!r}")
        self.assertEqual(int(m.group(1)), line, f"{name}: wrong line in {proc.stderr!r}")
        self.assertGreaterEqual(int(m.group(2)), 1)
        for word in mentions:
            self.assertIn(word, m.group(3), f"{name}: message should mention {word!r}")
        self.assertNotIn("configuration ok", proc.stderr)
        return proc

    def test_unknown_key(self):
        text = self.good_text().replace('path = "/echo"\n', 'path = "/echo"\nbogus_key = 1\n')
        self.expect_error("unknown_key.toml", text, line_of(text, "bogus_key"), ["bogus_key"])

    def test_unknown_top_level_key(self):
        text = "colour = \"blue\"\n" + self.good_text()
        self.expect_error("unknown_top.toml", text, 1, ["colour"])

    def test_bad_duration(self):
        text = self.good_text().replace('idle_timeout = "5m"', 'idle_timeout = "5 parsecs"')
        self.expect_error("bad_duration.toml", text, line_of(text, "idle_timeout"))

    def test_bad_size(self):
        text = self.good_text().replace('buffer_size = "256KiB"', 'buffer_size = "lots"')
        self.expect_error("bad_size.toml", text, line_of(text, "buffer_size"))

    def test_route_to_missing_upstream(self):
        text = self.good_text().replace('upstream = "echo"', 'upstream = "nowhere"')
        self.expect_error("missing_upstream.toml", text, line_of(text, '"nowhere"'),
                          ["nowhere"])

    def test_toml_syntax_error(self):
        text = self.good_text().replace('name = "echo"', 'name = "echo')
        self.expect_error("syntax.toml", text, line_of(text, 'name = "echo'))

    def test_bad_listener_address(self):
        text = self.good_text().replace('address = "127.0.0.1:', 'address = "127.0.0.1:x')
        self.expect_error("bad_address.toml", text, line_of(text, "address ="))

    def test_missing_file(self):
        proc = self.run_wsgate("-t", os.path.join(self.dir, "absent.toml"))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("absent.toml", proc.stderr)

    def test_run_refuses_bad_config(self):
        port = h.free_port()
        text = GOOD.format(port=port).replace('path = "/echo"\n', 'path = "/echo"\nbogus = 1\n')
        path = self.write("bad_run.toml", text)
        proc = self.run_wsgate("-c", path, timeout=30)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(f"{path}:{line_of(text, 'bogus')}:", proc.stderr)
        self.assertFalse(h.tcp_accepts("127.0.0.1", port))

    def test_shipped_example_configs(self):
        found = sorted(glob.glob(os.path.join(h.SOURCE_DIR, "conf", "*.toml")))
        if not found:
            self.skipTest(f"no example configs in {h.SOURCE_DIR}/conf")
        for path in found:
            with self.subTest(config=os.path.basename(path)):
                proc = self.run_wsgate("-t", path)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertIn("configuration ok", proc.stderr)


if __name__ == "__main__":
    h.main()
