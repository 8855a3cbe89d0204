"""Installing wsgate: `cmake --install` of the build tree into a temporary prefix (the
binaries, the default config, the docs, the systemd unit with this prefix's paths and
its socket unit, whose addresses are the config's; both pass `systemd-analyze verify`;
the installed binary passes -t on the installed config), and the Debian package `cpack -G DEB` makes (its files, control fields and
conffiles with dpkg-deb; its binary, unpacked, passes -t on its config; dpkg installs it
into a root of its own, checking its dependencies against this system's packages, and
removes it keeping the config).
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BUILD_DIR = os.path.dirname(os.path.abspath(h.WSGATE_BIN))
TOOL_TIMEOUT = 300

DOCS = ["README.md", "architecture.md", "configuration.md", "example-full.toml",
        "grafana-dashboard.json", "metrics.md", "operations.md"]


def project_version() -> str:
    with open(os.path.join(h.SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(wsgate VERSION (\S+)", f.read()).group(1)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT, **kw)


def exec_lines(unit_text: str) -> dict:
    out = {}
    for line in unit_text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("Exec"):
            out.setdefault(key, []).append(value)
    return out


class Install(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(os.path.join(BUILD_DIR, "CMakeCache.txt")):
            self.skipTest(f"{BUILD_DIR} is not a CMake build tree (WSGATE_BIN={h.WSGATE_BIN})")
        self.cmake = shutil.which("cmake")
        if not self.cmake:
            self.skipTest("cmake not found (scripts/install-deps.sh build)")
        self.dir = self.enterContext(tempfile.TemporaryDirectory(prefix="wsgate-install-"))

    def test_cmake_install_into_a_prefix(self):
        prefix = os.path.join(self.dir, "prefix")
        proc = run([self.cmake, "--install", BUILD_DIR, "--prefix", prefix])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        for name in ("wsgate", "wsgate-echo-backend"):
            path = os.path.join(prefix, "bin", name)
            self.assertTrue(os.stat(path).st_mode & stat.S_IXUSR, path)
        config = os.path.join(prefix, "etc", "wsgate", "wsgate.toml")
        for doc in DOCS:
            self.assertTrue(os.path.isfile(os.path.join(prefix, "share", "doc", "wsgate", doc)),
                            doc)
        proc = run([os.path.join(prefix, "bin", "wsgate"), "-t", "-c", config])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("configuration ok", proc.stderr)

        unit_path = os.path.join(prefix, "lib", "systemd", "system", "wsgate.service")
        with open(unit_path, encoding="utf-8") as f:
            unit = f.read()
        self.assertIsNone(re.search(r"@[A-Z_]+@", unit), "an unfilled @VAR@ in the unit")
        execs = exec_lines(unit)
        wsgate = os.path.join(prefix, "bin", "wsgate")
        self.assertEqual(execs["ExecStart"], [f"{wsgate} -c {config}"])
        self.assertEqual(execs["ExecStartPre"], [f"{wsgate} -t -c {config}"])
        self.assertEqual(execs["ExecReload"], [f"{wsgate} -t -c {config}",
                                               "/bin/kill -HUP $MAINPID"])
        for line in ("Type=notify", "LimitNOFILE=1048576", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "DynamicUser=yes"):
            self.assertIn(line + "\n", unit)

        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze not found (Debian's systemd package): the unit "
                          "was installed and checked above but not verified")
        socket_path = os.path.join(prefix, "lib", "systemd", "system", "wsgate.socket")
        with open(socket_path, encoding="utf-8") as f:
            socket_unit = f.read()
        # The socket unit's addresses are the installed config's (and so are matched).
        with open(config, encoding="utf-8") as f:
            config_text = f.read()
        listens = re.findall(r"^ListenStream=(\S+)$", socket_unit, re.M)
        self.assertEqual(len(listens), 2, socket_unit)
        for address in listens:
            self.assertIn(f'address = "{address}"', config_text)
        proc = run([analyze, "verify", unit_path, socket_path])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stdout + proc.stderr, "", "systemd-analyze verify warned")

    def test_debian_package(self):
        cpack = shutil.which("cpack")
        dpkg_deb = shutil.which("dpkg-deb")
        if not cpack or not dpkg_deb:
            self.skipTest("cpack or dpkg-deb not found (scripts/install-deps.sh test)")
        out = os.path.join(self.dir, "pkg")
        proc = run([cpack, "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-G", "DEB",
                    "-B", out], cwd=BUILD_DIR)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        version = project_version()
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, debs)
        self.assertTrue(debs[0].startswith(f"wsgate_{version}_"), debs)
        deb = os.path.join(out, debs[0])

        listing = run([dpkg_deb, "-c", deb])
        self.assertEqual(listing.returncode, 0, listing.stderr)
        files = {line.split()[-1] for line in listing.stdout.splitlines()
                 if not line.startswith("d")}
        expected = {"./usr/bin/wsgate", "./usr/bin/wsgate-echo-backend",
                    "./etc/wsgate/wsgate.toml", "./lib/systemd/system/wsgate.service",
                    "./lib/systemd/system/wsgate.socket"}
        expected |= {f"./usr/share/doc/wsgate/{d}" for d in DOCS}
        self.assertEqual(files, expected)

        info = run([dpkg_deb, "-f", deb, "Package", "Version", "Architecture", "Depends"])
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn("Package: wsgate\n", info.stdout)
        self.assertIn(f"Version: {version}\n", info.stdout)
        for lib in ("libssl3", "libnghttp2-14", "libevent-core-2.1-7", "libtomlplusplus3"):
            self.assertIn(lib, info.stdout, "dependency found by dpkg-shlibdeps")
        control = os.path.join(self.dir, "control")
        proc = run([dpkg_deb, "-e", deb, control])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(control, "conffiles"), encoding="utf-8") as f:
            self.assertEqual(f.read().split(), ["/etc/wsgate/wsgate.toml"])

        root = os.path.join(self.dir, "root")
        proc = run([dpkg_deb, "-x", deb, root])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(root, "lib/systemd/system/wsgate.service"), encoding="utf-8") as f:
            execs = exec_lines(f.read())
        self.assertEqual(execs["ExecStart"], ["/usr/bin/wsgate -c /etc/wsgate/wsgate.toml"])
        wsgate = os.path.join(root, "usr/bin/wsgate")
        proc = run([wsgate, "-t", "-c", os.path.join(root, "etc/wsgate/wsgate.toml")])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = run([wsgate, "-V"])
        self.assertTrue(proc.stdout.startswith(f"wsgate {version} (commit "), proc.stdout)
        self.install_with_dpkg(deb)

    def install_with_dpkg(self, deb: str):
        """`dpkg -i` into a root of its own whose package database is a copy of this
        system's: dpkg checks the Depends line against what Debian has installed here,
        unpacks, registers the conffile; then `dpkg -r` keeps the edited config."""
        dpkg = shutil.which("dpkg")
        if dpkg is None or os.geteuid() != 0 or not os.path.exists("/var/lib/dpkg/status"):
            self.skipTest("dpkg as root is needed to install the package")
        root = os.path.join(self.dir, "dpkg-root")
        admin = os.path.join(root, "var/lib/dpkg")
        for d in ("info", "updates", "triggers"):
            os.makedirs(os.path.join(admin, d))
        shutil.copy("/var/lib/dpkg/status", os.path.join(admin, "status"))
        open(os.path.join(admin, "available"), "w").close()
        proc = run([dpkg, f"--root={root}", "--log=/dev/null", "-i", deb])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr[-3000:])
        self.assertIn("Setting up wsgate", proc.stdout)
        query = run(["dpkg-query", f"--admindir={admin}", "-W", "-f=${Status}", "wsgate"])
        self.assertEqual(query.stdout, "install ok installed", query.stderr[-2000:])
        config = os.path.join(root, "etc/wsgate/wsgate.toml")
        proc = run([os.path.join(root, "usr/bin/wsgate"), "-t", "-c", config])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(config, "a", encoding="utf-8") as f:
            f.write("# edited by the operator\n")
        proc = run([dpkg, f"--root={root}", "--log=/dev/null", "-r", "wsgate"])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr[-3000:])
        self.assertFalse(os.path.exists(os.path.join(root, "usr/bin/wsgate")))
        self.assertTrue(os.path.exists(config), "dpkg -r keeps a conffile")


if __name__ == "__main__":
    h.main()
