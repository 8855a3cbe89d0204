#!/usr/bin/python3
"""HTTP forwarding: wsgate next to nginx and HAProxy on this machine, in one run (issue 15).

Every proxy runs one worker pinned to CPU 0, in front of the same upstreams, with the
load on CPU 1:

  small GETs   wrk -t1 -cC keep-alive GETs of a 13-byte response from an nginx static
               upstream (one worker); requests/s and the proxy's CPU time (utime+stime
               of the proxy and its children, from /proc) per request.
  download     curl fetches a 100 MiB file from the same nginx (Content-Length);
               the proxy's CPU per MiB.
  upload       curl posts 100 MiB (Content-Length) to a Node.js upstream that reads it
               to its end (tests/integration/http_backend.js /upload); CPU per MiB.
  chunked      the same upload with Transfer-Encoding: chunked (curl's chunks as it
               reads the file); CPU per MiB.
  paired GETs  every proxy up at once, each loaded with the same wrk in turn for
               --slice-seconds, --slices times, the order reversed each slice: CPU per
               GET and, within each slice, wsgate's over nginx's and HAProxy's (the
               machine's speed drifts over seconds; neighbours in time see the same one).
  idle memory  --idle N client connections, each after one GET, held open: the proxy's
               (RSS after - RSS before) / N; with --echo-backend, the same for N idle
               WebSockets through wsgate (bench/compare.py's measurement), for comparison.

Each proxy keeps idle connections to the upstream (nginx: `keepalive 256` with HTTP/1.1;
HAProxy: its default connection reuse; wsgate: the upstream's default keepalive = 256).

Every proxy does the same work per request: wsgate always adds X-Forwarded-For,
X-Forwarded-Proto, X-Forwarded-Host and a new 128-bit X-Request-Id to a forwarded
request, so nginx and HAProxy are configured to add the same four fields (nginx:
proxy_set_header with $proxy_add_x_forwarded_for, $scheme, $http_host, $request_id; HAProxy:
option forwardfor, set-header, unique-id-header with %[uuid]). --bare-peers runs them
without those fields, as a floor: that is less work than wsgate does.
Each measurement is repeated --rounds times, the proxies interleaved within a round,
and the median is reported with its ratio to nginx. Usage:

  bench/http_compare.py --wsgate build-bench/wsgate [--duration 10] [--rounds 3]
      [--echo-backend build-bench/wsgate-echo-backend] [--idle 2000]

Needs `scripts/install-deps.sh bench` (nginx-light, wrk, haproxy, node, curl). Talks only
to 127.0.0.1; every process it starts is stopped by its PID.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import compare as cmp  # noqa: E402  (free_port, wait_port, cpu_seconds, Proxy)

MIB = 1024 * 1024
NODE_BACKEND = os.path.join(HERE, "..", "tests", "integration", "http_backend.js")


def pinned(cpu, argv):
    return ["taskset", "-c", str(cpu), *argv]


class StaticUpstream:
    """nginx serving /small (13 bytes) and /big (100 MiB) from files, one worker, CPU 1."""

    def __init__(self, workdir):
        self.workdir = os.path.join(workdir, "upstream")
        os.makedirs(os.path.join(self.workdir, "www"), exist_ok=True)
        with open(os.path.join(self.workdir, "www", "small"), "wb") as f:
            f.write(b"hello, world\n")
        with open(os.path.join(self.workdir, "www", "big"), "wb") as f:
            f.write(os.urandom(MIB) * 100)
        self.port = cmp.free_port()
        self.proc = None

    def start(self):
        cfg = os.path.join(self.workdir, "nginx.conf")
        with open(cfg, "w") as f:
            f.write(cmp.nginx_preamble(self.workdir, "nginx", 4096) + f"""  keepalive_requests 1000000;
  keepalive_timeout 1h;
  sendfile on;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.workdir}/www;
  }}
}}
""")
        self.proc = subprocess.Popen(pinned(1, ["nginx", "-p", self.workdir, "-c", cfg]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmp.wait_port(self.port, self.proc)

    def stop(self):
        cmp.Proxy.stop(self)


class NodeUpstream:
    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.port = 0

    def start(self):
        log = os.path.join(self.workdir, "node.log")
        self.out = open(log, "w")
        self.proc = subprocess.Popen(pinned(1, ["node", NODE_BACKEND, "bench"]),
                                     stdout=self.out, stderr=subprocess.STDOUT)
        end = time.monotonic() + 20
        while time.monotonic() < end and not self.port:
            with open(log) as f:
                m = re.search(r"listening (\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if not self.port:
            raise RuntimeError("node upstream did not start")

    def stop(self):
        cmp.Proxy.stop(self)


class Proxy(cmp.Proxy):
    """A proxy under test, routing /upload to the Node upstream and the rest to nginx."""

    def __init__(self, name, workdir, static_port, node_port):
        super().__init__(name, workdir)
        self.static_port, self.node_port = static_port, node_port

    bare_peers = False  # --bare-peers

    def _spawn(self, argv, port):
        return super()._spawn(pinned(0, argv), port)

    def same_fields_nginx(self):
        """The request fields wsgate adds, as nginx configuration lines."""
        if self.bare_peers:
            return ""
        return ("    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
                "    proxy_set_header X-Forwarded-Proto $scheme;\n"
                "    proxy_set_header X-Forwarded-Host $http_host;\n"
                "    proxy_set_header X-Request-Id $request_id;\n")

    def same_fields_haproxy(self):
        """The request fields wsgate adds, as HAProxy frontend lines."""
        if self.bare_peers:
            return ""
        return ("  option forwardfor\n"
                "  http-request set-header X-Forwarded-Proto http\n"
                "  http-request set-header X-Forwarded-Host %[req.hdr(host)]\n"
                "  unique-id-format %[uuid]\n"
                "  unique-id-header X-Request-Id\n")


class Wsgate(Proxy):
    binary = ""

    def __init__(self, name, workdir, static_port, node_port, binary=""):
        super().__init__(name, workdir, static_port, node_port)
        self.binary = binary or Wsgate.binary

    def start(self):
        port = cmp.free_port()
        cfg = os.path.join(self.workdir, "wsgate-http.toml")
        with open(cfg, "w") as f:
            f.write(f"""workers = 1
access_log = ""
[[listener]]
address = "127.0.0.1:{port}"
[[upstream]]
name = "static"
servers = ["127.0.0.1:{self.static_port}"]
[[upstream]]
name = "node"
servers = ["127.0.0.1:{self.node_port}"]
[[route]]
path = "/upload"
upstream = "node"
max_body_size = "1GiB"
[[route]]
path = "/"
upstream = "static"
""")
        return self._spawn([self.binary, "-c", cfg], port)


class Nginx(Proxy):
    def start(self):
        port = cmp.free_port()
        d = self.workdir
        cfg = os.path.join(d, "nginx-http.conf")
        # nginx's documented keep-alive upstream configuration; bodies streamed
        # (proxy_buffering/proxy_request_buffering off) as wsgate streams them.
        with open(cfg, "w") as f:
            f.write(cmp.nginx_preamble(d, "nginx-proxy", 4096) + f"""  keepalive_requests 1000000;
  client_max_body_size 0;
  upstream static {{ server 127.0.0.1:{self.static_port}; keepalive 256; }}
  upstream node {{ server 127.0.0.1:{self.node_port}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
{self.same_fields_nginx()}    proxy_buffering off;
    proxy_request_buffering off;
    location /upload {{ proxy_pass http://node; }}
    location / {{ proxy_pass http://static; }}
  }}
}}
""")
        return self._spawn(["nginx", "-p", d, "-c", cfg], port)


class Haproxy(Proxy):
    def start(self):
        port = cmp.free_port()
        cfg = os.path.join(self.workdir, "haproxy-http.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
  nbthread 1
  maxconn 8000
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend web
  bind 127.0.0.1:{port}
{self.same_fields_haproxy()}  use_backend node if {{ path_beg /upload }}
  default_backend static
backend static
  server s1 127.0.0.1:{self.static_port}
backend node
  server n1 127.0.0.1:{self.node_port}
""")
        return self._spawn(["haproxy", "-db", "-f", cfg], port)


def hold_keepalive(port, count):
    """`count` client connections, each after one small GET answered in full, kept open
    (idle keep-alive). Returns the sockets."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while not data.endswith(b"hello, world\n") and len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError(f"keep-alive connection closed: {data[:80]!r}")
            data += chunk
        socks.append(s)
    return socks


def idle_bytes(proxy, hold, count):
    """(RSS after holding `count` idle connections - RSS before) / count."""
    port = proxy.start()
    try:
        hold(port, 50)  # warm-up: allocator arenas and pools exist already
        time.sleep(0.5)
        before = cmp.rss_bytes(proxy.proc.pid)
        socks = hold(port, count)
        time.sleep(1.0)
        after = cmp.rss_bytes(proxy.proc.pid)
        for s in socks:
            s.close()
        return (after - before) / count
    finally:
        proxy.stop()


def wrk_requests(port, connections, seconds):
    out = subprocess.run(pinned(1, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                                    f"http://127.0.0.1:{port}/small"]),
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or errors:
        raise RuntimeError(f"wrk failed: {out}")
    return int(m.group(1))


def curl(argv, timeout=300):
    p = subprocess.run(pinned(1, ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                  *argv]), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 or p.stdout != "200":
        raise RuntimeError(f"curl {argv}: {p.returncode} {p.stdout} {p.stderr}")


def paired_gets(proxies, args):
    """CPU per small GET with every proxy up at once, loaded in turn for --slice-seconds,
    --slices times, the order reversed each slice. The machine's speed drifts over
    seconds (the same binary's CPU per GET moved 1.7x between two 4 s runs): a proxy and
    the one loaded just before or after it see the same machine, so the ratio within a
    slice is steadier than one between rounds. {name: [us per GET, one per slice]}"""
    ports = {}
    try:
        for p in proxies:
            ports[p.name] = p.start()
            wrk_requests(ports[p.name], args.connections, 1)  # upstream keep-alive filled
        per = {p.name: [] for p in proxies}
        for i in range(args.slices):
            for p in (proxies if i % 2 == 0 else proxies[::-1]):
                before = cmp.cpu_seconds(p.proc.pid)
                n = wrk_requests(ports[p.name], args.connections, args.slice_seconds)
                per[p.name].append((cmp.cpu_seconds(p.proc.pid) - before) * 1e6 / n)
        return per
    finally:
        for p in proxies:
            p.stop()


def measure(proxy, args, upload_file):
    port = proxy.start()
    try:
        pid = proxy.proc.pid
        wrk_requests(port, args.connections, 1)  # warm-up: upstream keep-alive filled
        before = cmp.cpu_seconds(pid)
        n = wrk_requests(port, args.connections, args.duration)
        get_us = (cmp.cpu_seconds(pid) - before) * 1e6 / n
        result = {"rps": n / args.duration, "get_us": get_us}
        if args.transfers == 0:  # GETs only
            return result
        before = cmp.cpu_seconds(pid)
        for _ in range(args.transfers):
            curl([f"http://127.0.0.1:{port}/big"])
        down = (cmp.cpu_seconds(pid) - before) * 1e3 / (100 * args.transfers)
        before = cmp.cpu_seconds(pid)
        for _ in range(args.transfers):
            curl(["--data-binary", f"@{upload_file}", "-H", "Expect:",
                  f"http://127.0.0.1:{port}/upload"])
        up = (cmp.cpu_seconds(pid) - before) * 1e3 / (100 * args.transfers)
        before = cmp.cpu_seconds(pid)
        for _ in range(args.transfers):
            curl(["-T", upload_file, "-X", "POST", "-H", "Transfer-Encoding: chunked",
                  "-H", "Expect:", f"http://127.0.0.1:{port}/upload"])
        up_chunked = (cmp.cpu_seconds(pid) - before) * 1e3 / (100 * args.transfers)
        return {**result, "down_ms_per_mib": down, "up_ms_per_mib": up,
                "up_chunked_ms_per_mib": up_chunked}
    finally:
        proxy.stop()


def spread(ratios, peer, unit):
    """Ratios measured within each round or slice: median, range, and how many of them
    are at most 1 (wsgate at most the peer's figure)."""
    ratios = sorted(ratios)
    at_most = sum(1 for x in ratios if x <= 1.0)
    return (f"median {statistics.median(ratios):.2f}x, {ratios[0]:.2f}x to {ratios[-1]:.2f}x, "
            f"at most {peer}'s in {at_most} of {len(ratios)} {unit}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wsgate", required=True, help="the wsgate binary (a Release build)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--transfers", type=int, default=2,
                    help="100 MiB transfers each way (0: GETs only)")
    ap.add_argument("--only", default="wsgate,nginx,haproxy")
    ap.add_argument("--idle", type=int, default=2000,
                    help="idle keep-alive connections held for the memory figure (0: skip)")
    ap.add_argument("--echo-backend", default="",
                    help="wsgate-echo-backend binary: also measure an idle WebSocket")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                    help="another wsgate binary measured in the same rounds (before/after)")
    ap.add_argument("--slices", type=int, default=20,
                    help="paired CPU-per-GET slices, all proxies up at once (0: skip)")
    ap.add_argument("--slice-seconds", type=int, default=2)
    ap.add_argument("--bare-peers", action="store_true",
                    help="nginx and HAProxy without the forwarded fields wsgate adds")
    args = ap.parse_args()
    Proxy.bare_peers = args.bare_peers
    for tool in ("nginx", "wrk", "haproxy", "node", "curl", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: scripts/install-deps.sh bench")
    Wsgate.binary = os.path.abspath(args.wsgate)
    work = tempfile.mkdtemp(prefix="wsgate-http-bench-")
    static = StaticUpstream(work)
    node = NodeUpstream(work)
    upload = os.path.join(work, "upload.bin")
    with open(upload, "wb") as f:
        f.write(os.urandom(MIB) * 100)
    kinds = {"wsgate": Wsgate, "nginx": Nginx, "haproxy": Haproxy}
    names = [n for n in args.only.split(",") if n in kinds]
    for also in args.also:
        also_name, also_path = also.split("=", 1)
        kinds[also_name] = (lambda n, w, s, p, b=os.path.abspath(also_path): Wsgate(n, w, s, p, b))
        names.insert(names.index("wsgate") + 1 if "wsgate" in names else 0, also_name)
    results = {n: [] for n in names}
    idle = args.idle > 0
    ws_idle = []
    try:
        static.start()
        node.start()
        echo = None
        if idle and args.echo_backend:
            echo_port = cmp.free_port()
            echo = subprocess.Popen(pinned(1, [args.echo_backend, "--listen",
                                               f"127.0.0.1:{echo_port}", "--quiet"]))
            cmp.wait_port(echo_port, echo)
        paired = {}
        if args.slices > 0:
            paired = paired_gets([kinds[n](n, work, static.port, node.port) for n in names], args)
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else list(reversed(names))):
                res = measure(kinds[name](name, work, static.port, node.port), args, upload)
                if idle:
                    res["idle_http"] = idle_bytes(kinds[name](name, work, static.port, node.port),
                                                  hold_keepalive, args.idle)
                results[name].append(res)
                print(f"round {r + 1} {name}: {res}", file=sys.stderr)
            if echo is not None and "wsgate" in names:
                # The same wsgate, its route's upstream the WebSocket echo backend: an idle
                # WebSocket for comparison with an idle keep-alive connection.
                ws_idle.append(idle_bytes(cmp.Wsgate(work, echo_port, Wsgate.binary),
                                          cmp.hold_idle, args.idle))
    finally:
        if idle and args.echo_backend and echo is not None:
            echo.terminate()
            echo.wait(10)
        node.stop()
        static.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(name, key):
        return statistics.median(x[key] for x in results[name])
    rows = [("keep-alive GETs per second (wrk, %d connections)" % args.connections, "rps", "%.0f"),
            ("CPU per small GET (us)", "get_us", "%.1f")]
    if args.transfers > 0:
        rows += [("CPU per MiB, 100 MiB download (ms)", "down_ms_per_mib", "%.2f"),
                 ("CPU per MiB, 100 MiB upload (ms)", "up_ms_per_mib", "%.2f"),
                 ("CPU per MiB, 100 MiB chunked upload (ms)", "up_chunked_ms_per_mib", "%.2f")]
    if args.rounds > 0:
        print(f"| figure (one worker, medians of {args.rounds} rounds) | "
              + " | ".join(names) + (" | wsgate / nginx |" if "nginx" in names else " |"))
        print("|---" * (len(names) + 1 + ("nginx" in names)) + "|")
        if idle:
            rows.append((f"RSS per idle keep-alive client connection ({args.idle} held, bytes)",
                         "idle_http", "%.0f"))
        for title, key, fmt in rows:
            cells = [fmt % med(n, key) for n in names]
            ratio = ""
            if "nginx" in names and "wsgate" in names:
                ratio = " | %.2fx" % (med("wsgate", key) / med("nginx", key))
            print(f"| {title} | " + " | ".join(cells) + ratio + " |")
        if "nginx" in names:
            # The machine's speed drifts between rounds more than between two proxies measured
            # one after the other: the ratio within each round is the steadier figure.
            for name in (n for n in names if n not in ("nginx", "haproxy")):
                ratios = [a["get_us"] / b["get_us"] for a, b in zip(results[name], results["nginx"])]
                print(f"\n{name} / nginx, CPU per small GET within each round: "
                      + spread(ratios, "nginx", "rounds"))
    if paired:
        print(f"\nCPU per small GET (us), paired: all proxies up at once, each loaded in turn "
              f"for {args.slice_seconds} s, {args.slices} times (medians): "
              + ", ".join(f"{n} {statistics.median(paired[n]):.1f}" for n in names))
        for name in (n for n in names if n not in ("nginx", "haproxy")):
            for peer in (n for n in ("nginx", "haproxy") if n in names):
                ratios = [a / b for a, b in zip(paired[name], paired[peer])]
                print(f"{name} / {peer} within each slice: " + spread(ratios, peer, "slices"))
    if ws_idle:
        print(f"\nwsgate, RSS per idle WebSocket in the same run: "
              f"{statistics.median(ws_idle):.0f} bytes (median of {len(ws_idle)})")


if __name__ == "__main__":
    main()
