#!/usr/bin/python3
"""What one RFC 8441 stream costs wsgate, for two builds in the same run (e.g. before and
after a change): wsgate CPU time per echoed 64-byte message over HTTP/2 streams, and
wsgate RSS per idle open stream.

Each round starts each build in turn (1 worker, TLS listener with ALPN h2, the demo echo
backend behind it) and measures, with a fresh process per build and round:
  - CPU: --streams streams over --h2-conns TLS connections, closed-loop 64-byte echo
    (bench/h2_vs_h1_wss.py's client), wsgate utime+stime per round trip;
  - memory: --idle-streams streams opened (answered 200) over connections of 100 streams
    each, then held idle; (VmRSS with them - VmRSS before them) / streams.
Rounds alternate the builds' order; the summary is the median per build and the ratio.

  /usr/bin/python3 bench/h2_stream_cost.py --wsgate before=/path/a/wsgate \\
      --wsgate after=build/wsgate --echo-backend build/wsgate-echo-backend --rounds 3
"""

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

import h2.config
import h2.connection
import h2.events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2_vs_h1_wss as base  # noqa: E402

STREAMS_PER_CONN = 100  # wsgate's SETTINGS_MAX_CONCURRENT_STREAMS


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


async def open_idle_streams(port, total, deadline):
    """Opens `total` RFC 8441 streams; returns the open connections once every stream
    got its 200 (or raises at the deadline)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    conns = []

    async def one(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                       server_hostname="localhost")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        # Wait for the server's SETTINGS (extended CONNECT allowed) before the streams.
        answered = 0
        sent = False
        while answered < n:
            data = await asyncio.wait_for(reader.read(1 << 16), deadline - time.monotonic())
            if not data:
                raise SystemExit("h2 connection closed while opening streams")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers).get(b":status")
                    if status != b"200":
                        raise SystemExit(f"stream answered {status}")
                    answered += 1
            if not sent:
                sent = True
                for _ in range(n):
                    sid = conn.get_next_available_stream_id()
                    conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                            (":scheme", "https"), (":path", "/echo"),
                                            (":authority", "localhost"),
                                            ("sec-websocket-version", "13")])
            writer.write(conn.data_to_send())
            await writer.drain()
        conns.append((reader, writer))

    sizes = [STREAMS_PER_CONN] * (total // STREAMS_PER_CONN)
    if total % STREAMS_PER_CONN:
        sizes.append(total % STREAMS_PER_CONN)
    for i in range(0, len(sizes), 10):  # ten connections at a time
        await asyncio.gather(*(one(n) for n in sizes[i:i + 10]))
    return conns


def idle_rss_per_stream(gw_pid, port, total):
    async def run():
        await asyncio.sleep(0.5)
        before = rss_kib(gw_pid)
        conns = await open_idle_streams(port, total, time.monotonic() + 120)
        await asyncio.sleep(1.0)  # let the gateway settle (deferred frees, timers)
        after = rss_kib(gw_pid)
        for _, w in conns:
            w.close()
        return (after - before) * 1024 / total
    return asyncio.run(run())


def start_gateway(binary, conf, err):
    gw = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL, stderr=open(err, "a"))
    return gw


def stop(p):
    p.terminate()
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsgate", action="append", required=True, help="label=path, twice or more")
    ap.add_argument("--echo-backend", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--h2-conns", type=int, default=10)
    ap.add_argument("--idle-streams", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    builds = [tuple(w.split("=", 1)) for w in args.wsgate]
    tmp = tempfile.mkdtemp(prefix="wsgate-h2cost-")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    bport = base.free_port()
    backend = subprocess.Popen([args.echo_backend, "--listen", f"127.0.0.1:{bport}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {label: {"cpu": [], "rss": []} for label, _ in builds}
    try:
        base.wait_port(bport)
        for r in range(args.rounds):
            order = builds if r % 2 == 0 else list(reversed(builds))
            for label, binary in order:
                gport = base.free_port()
                conf = os.path.join(tmp, f"wsgate-{gport}.toml")
                with open(conf, "w") as f:
                    f.write(f'workers = 1\naccess_log = ""\n[[listener]]\n'
                            f'address = "127.0.0.1:{gport}"\nhttp2 = true\n'
                            f'[listener.tls]\ncertificates = [{{ cert = "{cert}", key = "{key}" }}]\n'
                            f'[[upstream]]\nname = "echo"\nservers = ["127.0.0.1:{bport}"]\n'
                            f'[[route]]\npath = "/echo"\nupstream = "echo"\n')
                gw = start_gateway(binary, conf, os.path.join(tmp, f"{label}.err"))
                try:
                    base.wait_port(gport)
                    res = base.phase("h2", gw.pid, gport, args.h2_conns,
                                     args.streams // args.h2_conns, args.procs, args.duration)
                    per_stream = idle_rss_per_stream(gw.pid, gport, args.idle_streams)
                finally:
                    stop(gw)
                results[label]["cpu"].append(res["cpu_us_per_msg"])
                results[label]["rss"].append(per_stream)
                print(f"round {r + 1} {label}: {res['msgs_per_s']:.0f} round trips/s, "
                      f"{res['cpu_us_per_msg']:.2f} us CPU per round trip; "
                      f"{per_stream:.0f} bytes RSS per idle stream", flush=True)
    finally:
        stop(backend)
    print("\nmedians:")
    for label, _ in builds:
        cpu = statistics.median(results[label]["cpu"])
        rss = statistics.median(results[label]["rss"])
        print(f"  {label}: {cpu:.2f} us CPU per round trip, {rss:.0f} bytes per idle stream")
    if len(builds) == 2:
        (a, _), (b, _) = builds
        print(f"  {b}/{a}: CPU x{statistics.median(results[b]['cpu']) / statistics.median(results[a]['cpu']):.2f}, "
              f"RSS x{statistics.median(results[b]['rss']) / statistics.median(results[a]['rss']):.2f}")


if __name__ == "__main__":
    main()
