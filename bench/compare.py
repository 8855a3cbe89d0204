#!/usr/bin/python3
"""Compares wsgate with nginx, HAProxy and nghttpx on this machine, in one run.

Every proxy runs with one worker in front of the same backend (our C++ echo backend),
and the same load client (bench/ws_load_client.cc) drives it. For each proxy:

  throughput  closed loop, C connections each sending a SIZE-byte message and waiting
              for the echo; messages/s and the proxy's CPU time (utime+stime of the
              proxy and its children, from /proc) per relayed message. One round trip
              relays two messages (client->backend and back).
  latency     open loop at a fixed rate; p50/p99 round trip, and the difference from a
              direct connection to the backend in the same run.
  idle memory N idle WebSocket connections held open; (RSS after - RSS before) / N.
  ws opens    WebSockets opened and closed one after the other for a few seconds, each on
              a new connection (upgrade, 101, Close both ways, TCP close): the proxy's
              CPU per WebSocket (its upstream connection included). With --tls each
              is a wss:// connection with a full TLS handshake.
  handshakes  with --tls: full TLS handshakes per second (`openssl s_time -new`, TLS 1.3,
              ECDSA P-256 certificate made at run time) and the proxy's CPU per handshake.

With --tls every proxy terminates TLS (wss://) with the same certificate and the same
TLS 1.3 suite (TLS13_SUITE below: each proxy is configured to offer only it), so the
proxies do the same cryptography and the figures compare their own work; the backend
stays plain ws://.

Each measurement is repeated --rounds times and the median is reported, with ratios
against the best peer. Usage:

  bench/compare.py --build build-bench [--duration 10] [--rounds 3] [--only wsgate,nginx]

Every proxy is pinned to CPU 0, the load client and the backend to CPU 1 (taskset).
Talks only to 127.0.0.1. Every process it starts is stopped by its PID.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import base64

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open")


def process_tree(pid):
    """pid and all its descendants (nginx/haproxy fork workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid):
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def rss_bytes(pid):
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def nginx_preamble(workdir, name, worker_connections, extra_main=""):
    """The start of an nginx.conf for one foreground worker whose files (pid, error log,
    temporary bodies) live in `workdir` under `name`; it ends inside `http {`."""
    tmp = os.path.join(workdir, f"{name}-tmp")
    os.makedirs(tmp, exist_ok=True)
    temp_paths = "".join(f"  {kind}_temp_path {tmp};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n"
            f"pid {workdir}/{name}.pid;\nerror_log {workdir}/{name}-error.log warn;\n"
            f"{extra_main}events {{ worker_connections {worker_connections}; }}\n"
            f"http {{\n  access_log off;\n{temp_paths}")


class Proxy:
    """A proxy under test: start() -> port, stop()."""

    tls = None  # (cert, key) when the run is over TLS
    cpu = None  # the CPU every proxy is pinned to (the load and the backend use another)

    def __init__(self, name, workdir):
        self.name, self.workdir, self.proc = name, workdir, None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def _spawn(self, argv, port):
        log = open(os.path.join(self.workdir, f"{self.name}.log"), "w")
        if Proxy.cpu is not None:
            argv = ["taskset", "-c", str(Proxy.cpu), *argv]  # exec'd: the PID is the proxy's
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=self.workdir)
        wait_port(port, self.proc)
        return port


class Direct(Proxy):
    def __init__(self, workdir, backend_port):
        super().__init__("direct", workdir)
        self.backend_port = backend_port

    def start(self):
        return self.backend_port

    def stop(self):
        pass


# The one TLS 1.3 suite every proxy offers with --tls (their defaults differ: wsgate
# prefers AES-128-GCM, OpenSSL's default order and so nginx's and HAProxy's AES-256-GCM).
TLS13_SUITE = "TLS_AES_128_GCM_SHA256"


class Wsgate(Proxy):
    def __init__(self, workdir, backend_port, binary, name="wsgate"):
        super().__init__(name, workdir)
        self.backend_port, self.binary = backend_port, binary

    def start(self):
        port = free_port()
        cfg = os.path.join(self.workdir, "wsgate.toml")
        tls = ""
        if Proxy.tls:
            tls = (f'[listener.tls]\ncertificates = [{{ cert = "{Proxy.tls[0]}", '
                   f'key = "{Proxy.tls[1]}" }}]\nciphersuites = "{TLS13_SUITE}"\n')
        with open(cfg, "w") as f:
            f.write(f"""workers = 1
access_log = ""
[[listener]]
address = "127.0.0.1:{port}"
{tls}[[upstream]]
name = "echo"
servers = ["127.0.0.1:{self.backend_port}"]
[[route]]
path = "/"
upstream = "echo"
idle_timeout = "1h"
""")
        return self._spawn([self.binary, "-c", cfg], port)


class Nginx(Proxy):
    def __init__(self, workdir, backend_port):
        super().__init__("nginx", workdir)
        self.backend_port = backend_port

    def start(self):
        port = free_port()
        cfg = os.path.join(self.workdir, "nginx.conf")
        # The standard WebSocket proxy configuration from nginx's documentation.
        with open(cfg, "w") as f:
            f.write(nginx_preamble(self.workdir, "nginx", 20000,
                                   "worker_rlimit_nofile 65536;\n") + f"""  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port}{" ssl" if Proxy.tls else ""};
    {f"ssl_certificate {Proxy.tls[0]}; ssl_certificate_key {Proxy.tls[1]};" if Proxy.tls else ""}
    ssl_session_cache shared:SSL:10m;
    ssl_protocols TLSv1.2 TLSv1.3;
    {f"ssl_conf_command Ciphersuites {TLS13_SUITE};" if Proxy.tls else ""}
    location / {{
      proxy_pass http://127.0.0.1:{self.backend_port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }}
  }}
}}
""")
        return self._spawn(["nginx", "-p", self.workdir, "-c", cfg], port)


class Haproxy(Proxy):
    def __init__(self, workdir, backend_port):
        super().__init__("haproxy", workdir)
        self.backend_port = backend_port

    def start(self):
        port = free_port()
        cfg = os.path.join(self.workdir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
  nbthread 1
  maxconn 9900
defaults
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend ws
  bind 127.0.0.1:{port}{f" ssl crt {Proxy.tls[2]} ciphersuites {TLS13_SUITE}" if Proxy.tls else ""}
  default_backend echo
backend echo
  server s1 127.0.0.1:{self.backend_port}
""")
        return self._spawn(["haproxy", "-db", "-f", cfg], port)


class Nghttpx(Proxy):
    def __init__(self, workdir, backend_port):
        super().__init__("nghttpx", workdir)
        self.backend_port = backend_port

    def start(self):
        port = free_port()
        frontend = f"--frontend=127.0.0.1,{port}" + ("" if Proxy.tls else ";no-tls")
        tls = [f"--tls13-ciphers={TLS13_SUITE}", Proxy.tls[1], Proxy.tls[0]] if Proxy.tls else []
        return self._spawn(["nghttpx", frontend, *tls,
                            f"--backend=127.0.0.1,{self.backend_port}", "--workers=1",
                            "--conf=/dev/null", "--accesslog-file=/dev/null",
                            f"--pid-file={self.workdir}/nghttpx.pid",
                            "--frontend-read-timeout=1h", "--backend-read-timeout=1h"], port)


def make_certificate(workdir):
    cert, key = os.path.join(workdir, "bench.pem"), os.path.join(workdir, "bench.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    combined = os.path.join(workdir, "bench-combined.pem")
    with open(combined, "w") as out:
        out.write(open(cert).read() + open(key).read())
    return cert, key, combined


def handshakes_per_second(port, seconds):
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
                          "-tls1_3", "-ciphersuites", TLS13_SUITE, "-time", str(seconds)],
                         capture_output=True, text=True,
                         timeout=seconds + 30)
    # "1234 connections in 5.00s; 246.80 connections/user sec, bytes read 0"
    # "1234 connections in 6 real seconds, 0 bytes read per connection"
    for line in out.stdout.splitlines():
        if "connections in" in line and "real seconds" in line:
            words = line.split()
            return int(words[0]), int(words[0]) / float(words[3])
    raise RuntimeError(f"s_time failed: {out.stdout[-300:]} {out.stderr[-300:]}")


def client_tls_context():
    """With --tls: a client context that does not verify (a benchmark); else None."""
    if not Proxy.tls:
        return None
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def read_head(sock, limit=65536):
    """Reads from `sock` until an HTTP head's CRLFCRLF (or EOF, or `limit` bytes)."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def open_websocket(port, ctx):
    """A new connection to the proxy, upgraded to a WebSocket on /echo (101 checked)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if ctx:
            s = ctx.wrap_socket(s)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = read_head(s, 4096)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"WebSocket refused: {head[:60]!r}")
        return s
    except BaseException:
        s.close()
        raise


def websocket_opens(port, seconds):
    """Opens and closes WebSockets one at a time for `seconds`; returns how many."""
    ctx = client_tls_context()
    close_frame = bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])  # masked Close 1000
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and done < 1_000_000:
        s = open_websocket(port, ctx)
        try:
            s.sendall(close_frame)
            for _ in range(100):  # the server's Close, then its TCP close
                if not s.recv(4096):
                    break
        finally:
            s.close()
        done += 1
    return done


def run_client(client, port, args, rate=None):
    scheme = "wss" if Proxy.tls else "ws"
    argv = [client, "--url", f"{scheme}://127.0.0.1:{port}/echo", "--connections",
            str(args.connections), "--size", str(args.size), "--duration", str(args.duration),
            "--warmup", "0"]
    if rate:
        argv += ["--rate", str(rate)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"load client failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def hold_idle(port, count):
    """Opens `count` WebSocket connections and returns the sockets (kept idle)."""
    ctx = client_tls_context()
    return [open_websocket(port, ctx) for _ in range(count)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rate", type=int, default=10000, help="round trips/s for the latency run")
    ap.add_argument("--idle", type=int, default=2000, help="idle connections for memory")
    ap.add_argument("--only", default="direct,wsgate,nginx,haproxy,nghttpx")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--tls", action="store_true", help="wss:// to every proxy, plus handshakes/s")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                    help="another wsgate binary measured in the same rounds (a before/after "
                         "comparison); its row is NAME")
    args = ap.parse_args()

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # The proxy on CPU 0; this script, the load client and the backend (its children) on
    # CPU 1, so that they never take the proxy's core from it.
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        Proxy.cpu = 0
        os.sched_setaffinity(0, {1})

    args.build = os.path.abspath(args.build)
    client = os.path.join(args.build, "wsgate-bench-client")
    backend_bin = os.path.join(args.build, "wsgate-echo-backend")
    wsgate_bin = os.path.join(args.build, "wsgate")
    work = tempfile.mkdtemp(prefix="wsgate-bench-")
    backend_port = free_port()
    if args.tls:
        Proxy.tls = make_certificate(work)
    backend = subprocess.Popen([backend_bin, "--listen", f"127.0.0.1:{backend_port}", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        wait_port(backend_port, backend)
        makers = {
            "direct": lambda: Direct(work, backend_port),
            "wsgate": lambda: Wsgate(work, backend_port, wsgate_bin),
            "nginx": lambda: Nginx(work, backend_port),
            "haproxy": lambda: Haproxy(work, backend_port),
            "nghttpx": lambda: Nghttpx(work, backend_port),
        }
        names = [n for n in args.only.split(",") if n in makers]
        for also in args.also:
            also_name, also_path = also.split("=", 1)
            makers[also_name] = (lambda p=os.path.abspath(also_path), n=also_name:
                                 Wsgate(work, backend_port, p, n))
            names.insert(names.index("wsgate") + 1 if "wsgate" in names else 0, also_name)
        for name in list(names):
            if name not in makers or name in ("direct", "wsgate") or \
                    any(a.startswith(name + "=") for a in args.also):
                continue
            if shutil.which(name) is None:
                print(f"skip {name}: not installed (scripts/install-deps.sh bench)", file=sys.stderr)
                names.remove(name)
        if args.tls and "direct" in names:
            names.remove("direct")  # the backend speaks plain ws://
        rows = {n: {"msgs_per_s": [], "cpu_us_per_msg": [], "p50_us": [], "p99_us": [],
                    "idle_bytes_per_conn": [], "handshakes_per_s": [], "cpu_us_per_handshake": [],
                    "ws_opens_per_s": [], "cpu_us_per_ws_open": []}
                for n in names}
        for rnd in range(args.rounds):
            # Each round starts one proxy later in the list (direct, when measured, stays
            # first): the one that runs right after `direct` measured up to 1.16x its
            # own CPU per message in other rounds, so no proxy keeps that place.
            fixed = [n for n in names if n == "direct"]
            rest = [n for n in names if n != "direct"]
            shift = rnd % len(rest) if rest else 0
            for name in fixed + rest[shift:] + rest[:shift]:
                proxy = makers[name]()
                port = proxy.start()
                try:
                    pid = proxy.proc.pid if proxy.proc else backend.pid
                    # Idle memory first, on a fresh process: later runs leave freed
                    # heap behind that new connections would reuse.
                    if name != "direct" and args.idle > 0:
                        before = rss_bytes(pid)
                        socks = hold_idle(port, args.idle)
                        time.sleep(0.5)
                        after = rss_bytes(pid)
                        for s in socks:
                            s.close()
                        rows[name]["idle_bytes_per_conn"].append((after - before) / args.idle)
                    c0 = cpu_seconds(pid)
                    t = run_client(client, port, args)
                    c1 = cpu_seconds(pid)
                    relayed = 2 * t["messages"]  # each round trip relays two messages
                    rows[name]["msgs_per_s"].append(t["msgs_per_s"])
                    # No warmup: the CPU delta covers exactly the counted messages (plus 100
                    # handshakes, which is noise next to hundreds of thousands of messages).
                    rows[name]["cpu_us_per_msg"].append((c1 - c0) * 1e6 / max(relayed, 1))
                    lat = run_client(client, port, args, rate=args.rate)
                    rows[name]["p50_us"].append(lat["p50_us"])
                    rows[name]["p99_us"].append(lat["p99_us"])
                    if name != "direct":
                        seconds = max(3, args.duration // 2)
                        o0 = cpu_seconds(pid)
                        opened = websocket_opens(port, seconds)
                        o1 = cpu_seconds(pid)
                        rows[name]["ws_opens_per_s"].append(opened / seconds)
                        rows[name]["cpu_us_per_ws_open"].append((o1 - o0) * 1e6 / max(opened, 1))
                    if args.tls:
                        h0 = cpu_seconds(pid)
                        count, rate = handshakes_per_second(port, max(3, args.duration // 2))
                        h1 = cpu_seconds(pid)
                        rows[name]["handshakes_per_s"].append(rate)
                        rows[name]["cpu_us_per_handshake"].append((h1 - h0) * 1e6 / max(count, 1))
                    print(f"round {rnd + 1} {name}: {t['msgs_per_s']:.0f} round trips/s, "
                          f"p99 {lat['p99_us']} us at {args.rate}/s", file=sys.stderr)
                finally:
                    proxy.stop()
        for name in names:
            results[name] = {k: (statistics.median(v) if v else None) for k, v in rows[name].items()}
        per_round = {n: rows[n]["cpu_us_per_msg"] for n in names}
    finally:
        backend.send_signal(signal.SIGTERM)
        try:
            backend.wait(10)
        except subprocess.TimeoutExpired:
            backend.kill()
        shutil.rmtree(work, ignore_errors=True)

    builds = {a.split("=", 1)[0] for a in args.also}  # other wsgate builds are not peers
    peers = [n for n in results if n not in ("direct", "wsgate") and n not in builds]
    print(f"\n{'wss' if args.tls else 'ws'}: "
          f"{args.connections} connections, {args.size}-byte echo, {args.duration}s per run, "
          f"median of {args.rounds} rounds, one worker each, {os.cpu_count()} cores\n")
    print("| proxy | round trips/s | CPU us per relayed msg | p50 us | p99 us "
          f"(at {args.rate}/s) | idle bytes/conn |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        def fmt(v, d=1):
            return "-" if v is None else f"{v:.{d}f}"
        print(f"| {name} | {fmt(r['msgs_per_s'], 0)} | {fmt(r['cpu_us_per_msg'], 2)} | "
              f"{fmt(r['p50_us'], 0)} | {fmt(r['p99_us'], 0)} | {fmt(r['idle_bytes_per_conn'], 0)} |")
    scheme = "wss" if args.tls else "ws"
    print(f"\n| proxy | {scheme}:// WebSockets opened and closed per second, one at a time "
          "| CPU us per WebSocket (new connection each) |")
    print("| --- | ---: | ---: |")
    for name, r in results.items():
        if r["ws_opens_per_s"] is not None:
            print(f"| {name} | {r['ws_opens_per_s']:.0f} | {r['cpu_us_per_ws_open']:.0f} |")
    if args.tls:
        print("\n| proxy | full TLS 1.3 handshakes/s (s_time -new) | CPU us per handshake |")
        print("| --- | ---: | ---: |")
        for name, r in results.items():
            print(f"| {name} | {r['handshakes_per_s']:.0f} | {r['cpu_us_per_handshake']:.0f} |")
    if "wsgate" in results and peers:
        w = results["wsgate"]
        best_cpu = min(results[p]["cpu_us_per_msg"] for p in peers)
        best_mem = min(results[p]["idle_bytes_per_conn"] or 1e18 for p in peers)
        print(f"\nwsgate CPU per message / best peer: {w['cpu_us_per_msg'] / best_cpu:.2f}")
        best_open = min(results[p]["cpu_us_per_ws_open"] or 1e18 for p in peers)
        if w["cpu_us_per_ws_open"]:
            print(f"wsgate CPU per WebSocket opened / best peer: "
                  f"{w['cpu_us_per_ws_open'] / best_open:.2f}")
        if w["idle_bytes_per_conn"]:
            print(f"wsgate idle memory per connection / best peer: "
                  f"{w['idle_bytes_per_conn'] / best_mem:.2f}")
        if "direct" in results:
            print(f"added p99 over direct: wsgate {w['p99_us'] - results['direct']['p99_us']:.0f} us; "
                  + ", ".join(f"{p} {results[p]['p99_us'] - results['direct']['p99_us']:.0f} us"
                              for p in peers))
    for b in builds:
        if "wsgate" in results and b in results:
            print(f"wsgate CPU per message / {b}: "
                  f"{results['wsgate']['cpu_us_per_msg'] / results[b]['cpu_us_per_msg']:.2f}")
    # The machine's speed drifts between rounds far more than between two proxies measured
    # one after the other: the ratio within each round, then its median.
    if "wsgate" in results:
        for other in [p for p in peers if p == "nginx"] + sorted(builds):
            ratios = [w / o for w, o in zip(per_round["wsgate"], per_round[other]) if o > 0]
            if ratios:
                print(f"wsgate / {other}, CPU per message within each round: median "
                      f"{statistics.median(ratios):.2f}x, {min(ratios):.2f}x to "
                      f"{max(ratios):.2f}x, {len(ratios)} rounds")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
