"""The command line as operators type it: `-t` in any order with `-c FILE` (and the
older `-t FILE`, `--check-config FILE`), `-V` / `--version` with wsgate's version (from
CMakeLists.txt's project VERSION), the git commit of the build and the library
versions, and wsgate_build_info on /metrics with the same facts.
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
import admin_client as ac  # noqa: E402
import harness as h  # noqa: E402
from test_config_check import GOOD  # noqa: E402


def project_version() -> str:
    with open(os.path.join(h.SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\(wsgate VERSION (\S+)", f.read())
    assert m, "no project VERSION in CMakeLists.txt"
    return m.group(1)


def git_head():
    """The short commit of the source tree, or None outside git."""
    git = shutil.which("git")
    if not git:
        return None
    proc = subprocess.run([git, "-C", h.SOURCE_DIR, "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else None


VERSION_RE = re.compile(r"^wsgate (\S+) \(commit (\S+)\)\n"
                        r"OpenSSL (\d+\.\d+\.\d+\S*) \(built with OpenSSL [^)]+\)\n"
                        r"libevent (\d+\.\d+\.\d+\S*) \(built with [^)]+\)\n"
                        r"nghttp2 (\d+\.\d+\.\d+\S*) \(built with [^)]+\)\n$")


class CommandLine(unittest.TestCase):
    def setUp(self):
        h.require_wsgate(self)
        self.dir = self.enterContext(tempfile.TemporaryDirectory(prefix="wsgate-cli-"))

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

    def test_check_flag_in_any_order(self):
        good = self.write("good.toml", GOOD.format(port=h.free_port()))
        bad = self.write("bad.toml", GOOD.format(port=h.free_port()).replace(
            'idle_timeout = "5m"', 'idle_timeout = "5 parsecs"'))
        forms = (["-t", "-c", "{}"], ["-c", "{}", "-t"], ["-t", "{}"], ["--check-config", "{}"],
                 ["--config", "{}", "-t"])
        for form in forms:
            with self.subTest(form=form):
                proc = self.run_wsgate(*[a.format(good) for a in form])
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertIn(f"{good}: configuration ok", proc.stderr)
                proc = self.run_wsgate(*[a.format(bad) for a in form])
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertRegex(proc.stderr, re.escape(bad) + r":\d+:\d+: ")
                self.assertNotIn("configuration ok", proc.stderr)

    def test_check_flag_needs_a_file(self):
        good = self.write("good.toml", GOOD.format(port=h.free_port()))
        for args in (["-t"], ["-c"], ["-t", "-c"], ["-c", good, "-c", good], ["-t", good, "-c", good]):
            with self.subTest(args=args):
                proc = self.run_wsgate(*args)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertNotIn("configuration ok", proc.stderr)

    def test_environment_variables_in_values(self):
        text = GOOD.format(port="${WSGATE_CLI_TEST_PORT}")
        path = self.write("env.toml", text)
        env = {k: v for k, v in os.environ.items() if k != "WSGATE_CLI_TEST_PORT"}
        proc = subprocess.run([h.WSGATE_BIN, "-t", "-c", path], capture_output=True, text=True,
                              timeout=30, env=env)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        line = text.splitlines().index('address = "127.0.0.1:${WSGATE_CLI_TEST_PORT}"') + 1
        self.assertIn(f"{path}:{line}:11: environment variable WSGATE_CLI_TEST_PORT is not set",
                      proc.stderr)
        env["WSGATE_CLI_TEST_PORT"] = str(h.free_port())
        proc = subprocess.run([h.WSGATE_BIN, "-t", "-c", path], capture_output=True, text=True,
                              timeout=30, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_version(self):
        proc = self.run_wsgate("-V")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        m = VERSION_RE.match(proc.stdout)
        self.assertIsNotNone(m, proc.stdout)
        self.assertEqual(m.group(1), project_version())
        head = git_head()
        if head is None:
            self.assertEqual(m.group(2), "unknown")
        else:
            # The commit the binary was built from: HEAD, or an ancestor of it when commits
            # were made since the last build.
            self.assertRegex(m.group(2), r"^[0-9a-f]{12}(-dirty)?$")
            built = m.group(2).removesuffix("-dirty")
            git = subprocess.run([shutil.which("git"), "-C", h.SOURCE_DIR, "merge-base",
                                  "--is-ancestor", built, "HEAD"], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(git.returncode, 0,
                             f"{built} is not HEAD ({head}) nor an ancestor of it: "
                             f"{git.stderr}")
        self.assertEqual(self.run_wsgate("--version").stdout, proc.stdout)

    def test_build_id_outside_git_is_unknown(self):
        cmake = shutil.which("cmake")
        if not cmake:
            self.skipTest("cmake not found (scripts/install-deps.sh build)")
        out = os.path.join(self.dir, "id.h")
        src = os.path.join(self.dir, "not-a-checkout")
        os.mkdir(src)
        subprocess.run([cmake, f"-DSOURCE_DIR={src}", "-DVERSION=9.8.7", f"-DOUT={out}", "-P",
                        os.path.join(h.SOURCE_DIR, "cmake", "build_id.cmake")],
                       check=True, capture_output=True, timeout=60,
                       env={**os.environ, "GIT_CEILING_DIRECTORIES": self.dir})
        with open(out, encoding="ascii") as f:
            text = f.read()
        self.assertIn('#define WSGATE_VERSION "9.8.7"', text)
        self.assertIn('#define WSGATE_GIT_COMMIT "unknown"', text)
        # An unchanged id is not rewritten (nothing rebuilds for it).
        before = os.stat(out).st_mtime_ns
        os.utime(out, ns=(before - 10**9, before - 10**9))
        subprocess.run([cmake, f"-DSOURCE_DIR={src}", "-DVERSION=9.8.7", f"-DOUT={out}", "-P",
                        os.path.join(h.SOURCE_DIR, "cmake", "build_id.cmake")],
                       check=True, capture_output=True, timeout=60,
                       env={**os.environ, "GIT_CEILING_DIRECTORIES": self.dir})
        self.assertEqual(os.stat(out).st_mtime_ns, before - 10**9)


class BuildInfoMetric(h.GatewayCase):
    async def test_build_info_matches_version(self):
        proc = subprocess.run([h.WSGATE_BIN, "-V"], capture_output=True, text=True, timeout=30)
        m = VERSION_RE.match(proc.stdout)
        self.assertIsNotNone(m, proc.stdout)
        backend = await self.start_backend()
        admin_port = h.free_port()
        await self.start_gateway(ac.with_admin(h.simple_config(h.free_port(), [backend.address]),
                                               admin_port))
        admin = ac.Admin(admin_port)
        await admin.wait_up()
        metrics = await admin.metrics()
        series = [(labels, v) for name, labels, v in metrics.samples
                  if name == "wsgate_build_info"]
        self.assertEqual(len(series), 1, series)
        labels, value = series[0]
        self.assertEqual(value, 1)
        self.assertEqual(labels, {"version": m.group(1), "commit": m.group(2),
                                  "openssl": m.group(3), "libevent": m.group(4),
                                  "nghttp2": m.group(5)})


if __name__ == "__main__":
    h.main()
