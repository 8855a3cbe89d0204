#!/usr/bin/python3
"""What forward auth ([route.auth] type = "forward") adds to a WebSocket handshake, in one
run: --handshakes sequential HTTP/1.1 handshakes on each of three routes of one wsgate
(1 worker) in front of the demo echo backend:

  open     no [route.auth]
  forward  forward auth, no cache: one subrequest per handshake
  cached   forward auth with cache_ttl = "10m": one subrequest per distinct token

The auth service is tests/integration/forward_auth_service.py (Python's http.server, one
thread per connection: its own latency is part of what "forward" adds). The clients use
--users distinct tokens in turn ("Bearer good-<n>"), so the cache's best hit rate is
1 - users/handshakes.

Per route: client-side latency from connect to the complete 101 (median, p90, p99),
wsgate's CPU (utime + stime from /proc) per handshake, the subrequests the service saw,
and from /metrics the cache hits and misses. Rounds alternate the route order; the
summary is the median over rounds.

  /usr/bin/python3 bench/forward_auth_cost.py --wsgate build/wsgate \\
      --echo-backend build/wsgate-echo-backend --handshakes 10000 --users 100 --rounds 1
"""

import argparse
import base64
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE = os.path.join(HERE, "..", "tests", "integration", "forward_auth_service.py")
PYTHON = "/usr/bin/python3"
ROUTES = ("open", "forward", "cached")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config(port, admin, echo, auth):
    text = (f'workers = 1\n\n[[listener]]\naddress = "127.0.0.1:{port}"\n\n'
            f'[[upstream]]\nname = "echo"\nservers = ["{echo}"]\n\n'
            f'[[upstream]]\nname = "auth"\nservers = ["{auth}"]\n\n')
    text += '[[route]]\nname = "open"\npath = "/open"\nupstream = "echo"\n\n'
    text += ('[[route]]\nname = "forward"\npath = "/forward"\nupstream = "echo"\n'
             '[route.auth]\ntype = "forward"\nupstream = "auth"\npath = "/check"\n'
             'response_headers = ["x-user"]\n\n')
    text += ('[[route]]\nname = "cached"\npath = "/cached"\nupstream = "echo"\n'
             '[route.auth]\ntype = "forward"\nupstream = "auth"\npath = "/check"\n'
             'response_headers = ["x-user"]\ncache_ttl = "10m"\n\n')
    text += f'[admin]\naddress = "127.0.0.1:{admin}"\n'
    return text


def handshake(port, path, token):
    """Seconds from connect to the complete 101 head; the connection is then closed."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit(f"{path}: connection closed before the answer: {data!r}")
            data += chunk
        took = time.perf_counter() - started
        if not data.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"{path}: {data[:200]!r}")
        # A masked Close (RFC 6455 5.5.1, code 1000), then the socket goes.
        s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
    return took


def metric(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def run_round(args, order):
    tmp = tempfile.TemporaryDirectory(prefix="wsgate-fwd-bench-")
    procs = []
    try:
        out = open(os.path.join(tmp.name, "service.log"), "wb")
        service = subprocess.Popen([PYTHON, SERVICE], stdout=out, stderr=subprocess.STDOUT)
        procs.append(service)

        def service_port():
            with open(out.name) as f:
                m = re.search(r"listening (\d+)", f.read())
            return int(m.group(1)) if m else 0
        auth_port = wait_for(service_port, "the auth service")
        echo_port = free_port()
        echo = subprocess.Popen([args.echo_backend, "--listen", f"127.0.0.1:{echo_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(echo)
        wait_for(lambda: accepts(echo_port), "the echo backend")
        port, admin = free_port(), free_port()
        conf = os.path.join(tmp.name, "wsgate.toml")
        with open(conf, "w") as f:
            f.write(config(port, admin, f"127.0.0.1:{echo_port}", f"127.0.0.1:{auth_port}"))
        gw = subprocess.Popen([args.wsgate, "-c", conf], stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(tmp.name, "wsgate.err"), "wb"))
        procs.append(gw)
        wait_for(lambda: accepts(port), "wsgate")
        results = {}
        for route in order:
            before_stats = json.loads(get(f"http://127.0.0.1:{auth_port}/_stats"))["requests"]
            cpu0 = cpu_seconds(gw.pid)
            lat = [handshake(port, f"/{route}", f"good-{i % args.users}")
                   for i in range(args.handshakes)]
            cpu = cpu_seconds(gw.pid) - cpu0
            after_stats = json.loads(get(f"http://127.0.0.1:{auth_port}/_stats"))["requests"]
            lat.sort()
            results[route] = {
                "median_ms": statistics.median(lat) * 1e3,
                "p90_ms": lat[int(len(lat) * 0.90)] * 1e3,
                "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
                "cpu_us": cpu / args.handshakes * 1e6,
                "subrequests": after_stats - before_stats,
            }
        m = get(f"http://127.0.0.1:{admin}/metrics")
        for route in ROUTES:
            hits = metric(m, "wsgate_auth_cache_lookups_total", route=route, result="hit")
            misses = metric(m, "wsgate_auth_cache_lookups_total", route=route, result="miss")
            results[route]["hit_rate"] = hits / (hits + misses) if hits + misses else None
            results[route]["allowed"] = metric(m, "wsgate_auth_decisions_total", route=route,
                                               result="allowed")
        return results
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)
        tmp.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wsgate", default="build/wsgate")
    ap.add_argument("--echo-backend", default="build/wsgate-echo-backend")
    ap.add_argument("--handshakes", type=int, default=10000)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    rounds = []
    for r in range(args.rounds):
        order = ROUTES if r % 2 == 0 else tuple(reversed(ROUTES))
        rounds.append(run_round(args, order))
    print(f"{args.handshakes} handshakes per route, {args.users} tokens, "
          f"{args.rounds} round(s), medians over rounds")
    print(f"{'route':8} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8} {'CPU us/hs':>10} "
          f"{'subrequests':>12} {'cache hit rate':>15}")
    for route in ROUTES:
        def med(key):
            return statistics.median(r[route][key] for r in rounds)
        hit = rounds[-1][route]["hit_rate"]
        print(f"{route:8} {med('median_ms'):10.3f} {med('p90_ms'):8.3f} {med('p99_ms'):8.3f} "
              f"{med('cpu_us'):10.1f} {int(med('subrequests')):12d} "
              f"{'-' if hit is None else f'{hit:.4f}':>15}")


if __name__ == "__main__":
    main()
