#!/usr/bin/env python3
"""CPU per WebSocket handshake with [route.auth] against the same handshake without it.

One wsgate (one worker) in front of wsgate-echo-backend, with one route per mode:
  open     no auth
  rs256    JWT, RS256 (2048-bit key)
  es256    JWT, ES256
  forward  forward auth to a small auth service (tests/integration/forward_auth_service.py),
           with a decision cache (cache_ttl)
Each round makes N handshakes per mode (a new TCP connection each: request, 101, close),
modes interleaved; wsgate's CPU (utime+stime from /proc/PID/stat) is read around each
batch. Reports medians over the rounds: microseconds of wsgate CPU per handshake, the
ratio to `open`, and the mean wall time per handshake. For `forward`: the cache's hit
rate and the added latency over `open`, from wsgate_auth_cache_lookups_total.

  /usr/bin/python3 bench/auth_handshake.py --build build [-n 2000] [--rounds 3]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.dont_write_bytecode = True
from test_jwt_auth import ISSUER, Keys  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def handshake(port: int, request: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if not data.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake failed: {data[:200]!r}")


def request_for(path: str, token: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def metric(admin_port: int, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-n", type=int, default=2000, help="handshakes per mode and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--forward-n", type=int, default=10000,
                    help="handshakes for the forward-auth cache run")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="wsgate-auth-bench-")
    keys = Keys(tmp.name)
    service = os.path.join(HERE, "..", "tests", "integration", "forward_auth_service.py")
    with_forward = os.path.exists(service)

    procs = []
    try:
        backend_port, gw_port, admin_port = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen([os.path.join(args.build, "wsgate-echo-backend"),
                                       "--listen", f"127.0.0.1:{backend_port}", "--quiet"]))
        auth_port = free_port()
        if with_forward:
            procs.append(subprocess.Popen(["/usr/bin/python3", service, "--port", str(auth_port)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        conf = (f'workers = 1\naccess_log = ""\n[admin]\naddress = "127.0.0.1:{admin_port}"\n'
                f'[[listener]]\naddress = "127.0.0.1:{gw_port}"\n'
                f'[[upstream]]\nname = "echo"\nservers = ["127.0.0.1:{backend_port}"]\n'
                f'[[upstream]]\nname = "auth"\nservers = ["127.0.0.1:{auth_port}"]\n'
                '[[route]]\nname = "open"\npath = "/open"\nupstream = "echo"\n')
        for name, key in (("rs256", keys.jwks), ("es256", keys.ec_pub)):
            source = f'jwks_file = "{key}"' if key.endswith(".json") else \
                f'public_key_files = ["{key}"]'
            conf += (f'[[route]]\nname = "{name}"\npath = "/{name}"\nupstream = "echo"\n'
                     f'[route.auth]\ntype = "jwt"\n{source}\nissuer = "{ISSUER}"\n'
                     'audiences = ["chat"]\nclaim_headers = { sub = "X-User" }\n')
        if with_forward:
            conf += ('[[route]]\nname = "forward"\npath = "/forward"\nupstream = "echo"\n'
                     '[route.auth]\ntype = "forward"\nupstream = "auth"\npath = "/check"\n'
                     'response_headers = ["x-user"]\ncache_ttl = "60s"\n')
        conf_path = os.path.join(tmp.name, "wsgate.toml")
        with open(conf_path, "w") as f:
            f.write(conf)
        gw = subprocess.Popen([os.path.join(args.build, "wsgate"), "-c", conf_path],
                              stderr=subprocess.DEVNULL)
        procs.insert(0, gw)
        wait_port(gw_port)
        wait_port(backend_port)

        modes = {"open": request_for("/open"),
                 "rs256": request_for("/rs256", keys.token("RS256", exp=int(time.time()) + 86400)),
                 "es256": request_for("/es256", keys.token("ES256", exp=int(time.time()) + 86400))}
        for req in modes.values():  # warm-up
            for _ in range(50):
                handshake(gw_port, req)
        cpu = {m: [] for m in modes}
        wall = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode, req in modes.items():
                c0, t0 = cpu_seconds(gw.pid), time.perf_counter()
                for _ in range(args.n):
                    handshake(gw_port, req)
                cpu[mode].append((cpu_seconds(gw.pid) - c0) / args.n * 1e6)
                wall[mode].append((time.perf_counter() - t0) / args.n * 1e6)
        base = statistics.median(cpu["open"])
        print(f"wsgate CPU per WebSocket handshake, one worker, {args.rounds} rounds x "
              f"{args.n} handshakes per mode (medians)")
        print(f"{'mode':8} {'CPU us':>8} {'x open':>7} {'wall us':>8}")
        for mode in modes:
            c = statistics.median(cpu[mode])
            print(f"{mode:8} {c:8.1f} {c / base:7.2f} {statistics.median(wall[mode]):8.1f}")

        if with_forward:
            wait_port(auth_port)
            req = request_for("/forward", "good")
            t0 = time.perf_counter()
            for _ in range(args.forward_n):
                handshake(gw_port, req)
            forward_wall = (time.perf_counter() - t0) / args.forward_n * 1e6
            t0 = time.perf_counter()
            for _ in range(args.forward_n):
                handshake(gw_port, modes["open"])
            open_wall = (time.perf_counter() - t0) / args.forward_n * 1e6
            hits = metric(admin_port, "wsgate_auth_cache_lookups_total", route="forward",
                          result="hit")
            misses = metric(admin_port, "wsgate_auth_cache_lookups_total", route="forward",
                            result="miss")
            print(f"forward auth with cache_ttl=60s, {args.forward_n} handshakes: "
                  f"cache hits {hits:.0f}, misses {misses:.0f} "
                  f"(hit rate {hits / max(1.0, hits + misses):.4f}); "
                  f"wall per handshake {forward_wall:.1f} us vs {open_wall:.1f} us without auth "
                  f"(+{forward_wall - open_wall:.1f} us)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
