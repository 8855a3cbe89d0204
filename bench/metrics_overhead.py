#!/usr/bin/env python3
"""Relay throughput with metrics on vs off, in the same run.

"on":  a normal build (per-frame counters in every Pipe) with /metrics scraped once a
       second during the measurement;
"off": a build configured with -DWSGATE_RELAY_COUNTERS=OFF (counting compiled out),
       not scraped.
Both run with one worker in front of the C++ echo backend, driven by
wsgate-bench-client (closed loop); the two binaries alternate run by run (ABAB, then
BABA) so drift hits both. Prints every run and the medians as JSON lines: messages/s,
the per-pair on/off ratio (robust to load drifting during the run), and the gateway's
CPU time per relayed message (from /proc/<pid>/stat; robust to other load on the host).

  bench/metrics_overhead.py --on build/wsgate --off build-nocount/wsgate \\
      --echo build/wsgate-echo-backend --client build/wsgate-bench-client --runs 5

Only 127.0.0.1; every process is stopped by its PID.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"process exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"port {port} not up within {deadline}s")


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def one_run(binary, scrape, args, backend_port, tmp):
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, "bench.toml")
    with open(conf, "w") as f:
        f.write(f'workers = 1\naccess_log = ""\n[[listener]]\naddress = "127.0.0.1:{port}"\n'
                f'[[upstream]]\nname = "echo"\nservers = ["127.0.0.1:{backend_port}"]\n'
                f'[[route]]\npath = "/echo"\nupstream = "echo"\n'
                f'[admin]\naddress = "127.0.0.1:{admin}"\n')
    gw = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    stop_scraping = threading.Event()
    scrapes = []
    try:
        wait_port(port, gw)

        def scraper():
            while not stop_scraping.wait(1.0):
                t = time.monotonic()
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read()
                scrapes.append(time.monotonic() - t)
        t = threading.Thread(target=scraper, daemon=True)
        if scrape:
            t.start()
        cpu_before = cpu_seconds(gw.pid)
        out = subprocess.run(
            [args.client, "--url", f"ws://127.0.0.1:{port}/echo",
             "--connections", str(args.connections), "--size", str(args.size),
             "--duration", str(args.duration), "--warmup", "0"],
            capture_output=True, text=True, timeout=args.duration + 60, check=True)
        stop_scraping.set()
        if scrape:
            t.join(10)
        cpu = cpu_seconds(gw.pid) - cpu_before
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["gateway_cpu_us_per_msg"] = round(cpu * 1e6 / max(1, result["messages"]), 3)
        result["scrapes"] = len(scrapes)
        result["scrape_ms_max"] = round(max(scrapes) * 1000, 2) if scrapes else None
        return result
    finally:
        stop_scraping.set()
        stop(gw)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--on", required=True)
    p.add_argument("--off", required=True)
    p.add_argument("--echo", required=True)
    p.add_argument("--client", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--size", type=int, default=1024)
    args = p.parse_args()

    backend_port = free_port()
    backend = subprocess.Popen([args.echo, "--listen", f"127.0.0.1:{backend_port}", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {"on": [], "off": []}
    try:
        wait_port(backend_port, backend)
        with tempfile.TemporaryDirectory(prefix="wsgate-bench-") as tmp:
            for i in range(args.runs):
                order = ("on", "off") if i % 2 == 0 else ("off", "on")
                for variant in order:
                    binary = args.on if variant == "on" else args.off
                    r = one_run(binary, variant == "on", args, backend_port, tmp)
                    r["variant"] = variant
                    results[variant].append(r)
                    print(json.dumps(r), flush=True)
    finally:
        stop(backend)
    med = {v: statistics.median(r["msgs_per_s"] for r in rs) for v, rs in results.items()}
    cpu = {v: statistics.median(r["gateway_cpu_us_per_msg"] for r in rs)
           for v, rs in results.items()}
    pair = statistics.median(on["msgs_per_s"] / off["msgs_per_s"]
                             for on, off in zip(results["on"], results["off"]))
    print(json.dumps({"median_msgs_per_s_on": med["on"], "median_msgs_per_s_off": med["off"],
                      "on_vs_off_percent": round(100.0 * (med["on"] / med["off"] - 1), 2),
                      "median_pair_ratio_percent": round(100.0 * (pair - 1), 2),
                      "median_cpu_us_per_msg_on": round(cpu["on"], 3),
                      "median_cpu_us_per_msg_off": round(cpu["off"], 3),
                      "cpu_per_msg_on_vs_off_percent": round(100.0 * (cpu["on"] / cpu["off"] - 1),
                                                             2),
                      "runs": args.runs, "connections": args.connections,
                      "size": args.size, "duration_s": args.duration}))


if __name__ == "__main__":
    sys.exit(main())
