"""Debian's HAProxy as a real third-party peer: started with `haproxy -db -f <cfg>` on
127.0.0.1 ports chosen here, stopped by its PID. The config text is a template whose
{names} are filled with free ports (and any other values given)."""

import os
import shutil
import signal
import subprocess
import tempfile

import harness as h

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def available() -> bool:
    return os.access(HAPROXY, os.X_OK)


class HAProxy:
    def __init__(self, cfg_template: str, port_names, **values):
        self.ports = {name: h.free_port() for name in port_names}
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-haproxy-")
        self.cfg = os.path.join(self.tmp.name, "haproxy.cfg")
        with open(self.cfg, "w", encoding="ascii") as f:
            f.write(cfg_template.format(**self.ports, **values))
        self.log = open(os.path.join(self.tmp.name, "haproxy.log"), "wb")
        self.proc = None

    async def start(self) -> "HAProxy":
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited with {self.proc.returncode}: "
                                     + self.output())
            return all(h.tcp_accepts("127.0.0.1", p) for p in self.ports.values())
        await h.wait_until(up, h.STARTUP_DEADLINE, "haproxy to listen")
        return self

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()
        self.tmp.cleanup()
