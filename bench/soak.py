#!/usr/bin/python3
"""Soak: thousands of WebSocket connections opening, messaging and closing for minutes
through wsgate in front of the echo backend, with numbered messages. A script, not a test.

Every client connection has an id and numbers its messages 0, 1, 2, ...; each message is
"<id> <seq> " followed by filler that depends on (id, seq), text and binary alternating.
The client checks that every echo comes back complete (byte for byte), in order, exactly
once. When a connection's lifetime is over it stops sending, waits for the echoes still in
flight (up to --drain), and closes: with a Close handshake, or (--abort-fraction of them)
by dropping the TCP connection without one.

  lost        sent but never echoed by the time the connection ended
  reordered   an echo whose sequence number was not the next one expected
  corrupt     an echo that does not match what was sent for that sequence number
  dropped     connections that ended abnormally before the client closed them

wsgate's RSS (VmRSS from /proc/PID/status) and open file descriptors are sampled every
--sample seconds. At the end: first (before any load) / last / max RSS, the
least-squares slope of RSS after --warmup seconds and over the last half of that window,
and RSS and descriptors once every client has gone (idle); then wsgate's own counters
from its admin /metrics to cross-check the client's. Progress is printed every --report
seconds.

  bench/soak.py [--build build-test] [--duration 180] [--connections 1500]
                [--lifetime 10] [--rate 2] [--size 128] [--size-max 2048] [--workers 1]
                [--procs 4] [--json out.json] [--wrapper "valgrind --leak-check=full ..."]

The client load is spread over --procs processes (multiprocessing, asyncio and
python3-websockets in each). Everything is bounded in time: connections stop at
--duration, get --drain seconds to finish, and every process this script starts (the
client processes, wsgate, the echo backend) is stopped by its PID. Talks only to
127.0.0.1. Exit status 1 when any message was lost, reordered, corrupt or duplicated, a
connection was dropped, or a client process did not finish in time.
"""

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import queue
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COUNTERS = ("opened", "closed", "aborted", "handshake_failures", "dropped", "sent",
            "received", "lost", "reordered", "corrupt", "duplicates", "close_errors")


# --------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, deadline_s, what, proc=None):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        if cond():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_pid(proc, grace_s=10.0):
    """SIGTERM, then SIGKILL after grace_s; only this Popen's own PID."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def proc_status(pid):
    """(VmRSS KiB, open fds) of one process, or (None, None) when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, StopIteration):
        return None, None


def scrape(admin_port):
    """wsgate's /metrics as {name{labels}: value}; {} when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def metric_sum(metrics, name, **labels):
    total = 0.0
    for key, value in metrics.items():
        base = key.split("{", 1)[0]
        if base != name:
            continue
        if all(f'{k}="{v}"' in key for k, v in labels.items()):
            total += value
    return total


def metric_by(metrics, name, label):
    out = {}
    for key, value in metrics.items():
        if key.split("{", 1)[0] != name or value == 0:
            continue
        tag = f'{label}="'
        i = key.find(tag)
        val = key[i + len(tag):key.find('"', i + len(tag))] if i >= 0 else ""
        out[val] = out.get(val, 0) + value
    return out


# --------------------------------------------------------------------------------------
# the client processes
# --------------------------------------------------------------------------------------

def payload(cid, seq, size):
    """Message seq of connection cid: text for even seq, binary for odd."""
    head = f"{cid} {seq} "
    fill = chr(ord("a") + (cid * 31 + seq) % 26)
    text = head + fill * max(0, size - len(head))
    return text if seq % 2 == 0 else text.encode()


class Hist:
    """Counts in buckets from 0.1 ms doubling up; enough for p50/p99."""
    EDGES = [0.0001 * 2 ** i for i in range(20)]

    def __init__(self):
        self.counts = [0] * (len(self.EDGES) + 1)

    def add(self, seconds):
        for i, edge in enumerate(self.EDGES):
            if seconds <= edge:
                self.counts[i] += 1
                return
        self.counts[-1] += 1


def quantile(counts, q):
    total = sum(counts)
    if total == 0:
        return None
    need, acc = q * total, 0
    for i, c in enumerate(counts):
        acc += c
        if acc >= need:
            return Hist.EDGES[i] if i < len(Hist.EDGES) else float("inf")
    return float("inf")


async def client_main(index, args, uri, stop, results):
    import websockets  # python3-websockets; imported here so --help works without it

    stats = dict.fromkeys(COUNTERS, 0)
    errors = {}
    rtt, hs = Hist(), Hist()
    active = 0
    rng = random.Random(index)
    stopping = False      # mirrors the shared stop event, polled (cheaper than is_set())
    my_slots = len(range(index, args.connections, args.procs))
    next_id = index

    def note(kind, exc):
        key = f"{kind}: {type(exc).__name__}: {str(exc)[:80]}"
        errors[key] = errors.get(key, 0) + 1

    async def one_connection(cid):
        nonlocal active
        lifetime = args.lifetime * rng.uniform(0.5, 1.5)
        t0 = time.monotonic()
        try:
            ws = await asyncio.wait_for(
                websockets.connect(uri, compression=None, ping_interval=None,
                                   max_size=None, close_timeout=args.drain,
                                   open_timeout=None), args.open_timeout)
        except Exception as exc:  # noqa: BLE001 - any failure to open counts
            stats["handshake_failures"] += 1
            note("handshake", exc)
            await asyncio.sleep(0.5)
            return
        hs.add(time.monotonic() - t0)
        stats["opened"] += 1
        active += 1
        sent_at = {}          # seq -> send time, for echoes still in flight
        expected = 0          # next sequence number due
        seen = set()          # sequence numbers echoed (to find duplicates / count lost)
        all_echoed = asyncio.Event()
        sending_done = False
        sent = 0

        async def reader():
            nonlocal expected
            async for msg in ws:
                now = time.monotonic()
                try:
                    head = msg[:40].decode() if isinstance(msg, bytes) else msg[:40]
                    rid, rseq = (int(x) for x in head.split(" ", 2)[:2])
                except ValueError:
                    stats["corrupt"] += 1
                    continue
                if rid != cid or rseq >= sent or msg != payload(cid, rseq, size_of(rseq)):
                    stats["corrupt"] += 1
                    continue
                if rseq in seen:
                    stats["duplicates"] += 1
                    continue
                seen.add(rseq)
                stats["received"] += 1
                if rseq != expected:
                    stats["reordered"] += 1
                expected = max(expected, rseq + 1)
                rtt.add(now - sent_at.pop(rseq, now))
                if sending_done and len(seen) == sent:
                    all_echoed.set()

        sizes = {}

        def size_of(seq):
            return sizes[seq]

        reader_task = asyncio.create_task(reader())
        outcome = "ok"
        try:
            interval = 1.0 / args.rate if args.rate > 0 else None
            next_send = time.monotonic() + (rng.uniform(0, interval) if interval else 0)
            end = t0 + lifetime
            while not stopping and time.monotonic() < end and interval:
                delay = next_send - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(min(delay, end - time.monotonic(), 1.0))
                    continue
                size = rng.randint(args.size, max(args.size, args.size_max))
                sizes[sent] = size
                msg = payload(cid, sent, size)
                sent_at[sent] = time.monotonic()
                sent += 1
                stats["sent"] += 1
                await ws.send(msg)
                next_send += interval
                if reader_task.done():
                    break
            sending_done = True
            if len(seen) == sent:
                all_echoed.set()
            waiter = asyncio.ensure_future(all_echoed.wait())
            await asyncio.wait([waiter, reader_task], timeout=args.drain,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if reader_task.done() and reader_task.exception() is not None:
                raise reader_task.exception()
            if reader_task.done():
                raise ConnectionError(f"closed by the server: {ws.close_code}")
        except Exception as exc:  # noqa: BLE001 - a connection that broke under us
            outcome = "dropped"
            stats["dropped"] += 1
            note("dropped", exc)
        stats["lost"] += sent - len(seen)
        try:
            if outcome == "ok" and rng.random() < args.abort_fraction:
                ws.transport.abort()
                stats["aborted"] += 1
            else:
                await asyncio.wait_for(ws.close(), args.drain + 1)
                if outcome == "ok" and ws.close_code != 1000:
                    stats["close_errors"] += 1
                    note("close", RuntimeError(f"close code {ws.close_code}"))
        except Exception as exc:  # noqa: BLE001
            stats["close_errors"] += 1
            note("close", exc)
            ws.transport.abort()
        reader_task.cancel()
        try:
            await reader_task
        except BaseException:  # noqa: BLE001 - cancelled or already reported
            pass
        stats["closed"] += 1
        active -= 1

    async def slot(k):
        nonlocal next_id
        # Ramp up: slots start spread over --ramp seconds, not all at once.
        await asyncio.sleep(args.ramp * k / max(1, my_slots))
        while not stopping:
            cid = next_id
            next_id += args.procs   # ids are unique across processes
            await one_connection(cid)

    async def reporter():
        while True:
            results.put((index, dict(stats), active, dict(errors), rtt.counts, hs.counts, False))
            await asyncio.sleep(1.0)

    async def watch_stop():
        nonlocal stopping
        while not stop.is_set():
            await asyncio.sleep(0.2)
        stopping = True

    rep = asyncio.create_task(reporter())
    watcher = asyncio.create_task(watch_stop())
    await asyncio.gather(*(slot(k) for k in range(my_slots)))
    rep.cancel()
    watcher.cancel()
    results.put((index, dict(stats), active, dict(errors), rtt.counts, hs.counts, True))


def client_process(index, args, uri, stop, results):
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when to stop
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    asyncio.run(client_main(index, args, uri, stop, results))


# --------------------------------------------------------------------------------------
# the parent: start, sample, report, stop
# --------------------------------------------------------------------------------------

def slope_kib_per_min(samples):
    """Least-squares slope of (t, rss KiB) pairs, in KiB per minute."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    if var == 0:
        return None
    return 60.0 * sum((t - mt) * (r - mr) for t, r in samples) / var


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-test"),
                    help="folder with wsgate and wsgate-echo-backend (default build-test)")
    ap.add_argument("--duration", type=float, default=180, help="seconds of load (180)")
    ap.add_argument("--connections", type=int, default=1500, help="concurrent connections")
    ap.add_argument("--lifetime", type=float, default=10,
                    help="mean connection lifetime in seconds, each drawn from 0.5x..1.5x (10)")
    ap.add_argument("--rate", type=float, default=2, help="messages/s per connection (2)")
    ap.add_argument("--size", type=int, default=128, help="smallest message, bytes (128)")
    ap.add_argument("--size-max", type=int, default=2048, help="largest message, bytes (2048)")
    ap.add_argument("--abort-fraction", type=float, default=0.1,
                    help="share of connections dropped without a Close handshake (0.1)")
    ap.add_argument("--workers", type=int, default=1, help="wsgate worker threads (1)")
    ap.add_argument("--procs", type=int, default=4, help="client processes (4)")
    ap.add_argument("--ramp", type=float, default=None,
                    help="seconds over which connections first open (default: --lifetime)")
    ap.add_argument("--drain", type=float, default=10,
                    help="seconds a closing connection waits for its last echoes (10)")
    ap.add_argument("--open-timeout", type=float, default=10, help="handshake deadline (10)")
    ap.add_argument("--sample", type=float, default=2, help="RSS sample interval, s (2)")
    ap.add_argument("--report", type=float, default=15, help="progress interval, s (15)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds excluded from the RSS slope (default: 2 x --lifetime)")
    ap.add_argument("--idle", type=float, default=6,
                    help="seconds to sample RSS after every client has gone (6)")
    ap.add_argument("--wrapper", default="",
                    help='command to run wsgate under, e.g. "valgrind --leak-check=full '
                         '--log-file=vg.log" (RSS is then the wrapper\'s)')
    ap.add_argument("--json", help="write the results here as JSON")
    args = ap.parse_args()
    if args.ramp is None:
        args.ramp = args.lifetime
    if args.warmup is None:
        args.warmup = 2 * args.lifetime
    args.procs = max(1, min(args.procs, args.connections))
    try:
        import websockets  # noqa: F401 - fail here, not in every client process
    except ImportError:
        sys.exit("needs python3-websockets: run with /usr/bin/python3 (Debian's)")

    wsgate_bin = os.path.join(args.build, "wsgate")
    backend_bin = os.path.join(args.build, "wsgate-echo-backend")
    for b in (wsgate_bin, backend_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found; build the wsgate and wsgate-echo-backend targets")

    tmp = tempfile.TemporaryDirectory(prefix="wsgate-soak-")
    port, backend_port, admin_port = free_port(), free_port(), free_port()
    config = os.path.join(tmp.name, "wsgate.toml")
    with open(config, "w") as f:
        f.write(f"""workers = {args.workers}
drain_timeout = "2s"
access_log = ""

[[listener]]
address = "127.0.0.1:{port}"

[[upstream]]
name = "echo"
servers = ["127.0.0.1:{backend_port}"]

[[route]]
path = "/echo"
upstream = "echo"

[admin]
address = "127.0.0.1:{admin_port}"
""")

    backend = gate = None
    clients = []
    stop = mp.Event()
    results = mp.Queue()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    logs = open(os.path.join(tmp.name, "processes.log"), "wb")
    try:
        backend = subprocess.Popen([backend_bin, "--listen", f"127.0.0.1:{backend_port}",
                                    "--quiet"], stdin=subprocess.DEVNULL, stdout=logs,
                                   stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(backend_port), 10, "the echo backend", backend)
        gate = subprocess.Popen(shlex.split(args.wrapper) + [wsgate_bin, "-c", config],
                                stdin=subprocess.DEVNULL, stdout=logs,
                                stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(port), 60 if args.wrapper else 10, "wsgate", gate)
        print(f"soak {started}: {args.connections} connections, lifetime ~{args.lifetime:g} s, "
              f"{args.rate:g} msg/s each, {args.size}..{args.size_max} B, "
              f"{args.duration:g} s, wsgate workers={args.workers} (pid {gate.pid}), "
              f"{args.procs} client processes", flush=True)

        uri = f"ws://127.0.0.1:{port}/echo"
        ctx = mp.get_context("fork")
        for i in range(args.procs):
            p = ctx.Process(target=client_process, args=(i, args, uri, stop, results),
                            daemon=True)
            p.start()
            clients.append(p)

        latest = {}
        finished = set()
        samples = []     # (t, rss KiB, fds) while the load runs
        idle = []        # the same after every client has gone
        t_start = time.monotonic()
        next_sample = t_start
        next_report = t_start + args.report
        stop_at = t_start + args.duration
        hard_end = stop_at + args.drain * 2 + args.open_timeout + 15

        def drain_results():
            while True:
                try:
                    idx, st, act, errs, rtt, hs, done = results.get_nowait()
                except queue.Empty:
                    return
                latest[idx] = (st, act, errs, rtt, hs)
                if done:
                    finished.add(idx)

        def totals():
            tot = dict.fromkeys(COUNTERS, 0)
            active = 0
            for st, act, _, _, _ in latest.values():
                for k in COUNTERS:
                    tot[k] += st.get(k, 0)
                active += act
            return tot, active

        def progress(now):
            tot, active = totals()
            rss = samples[-1][1] if samples else 0
            fds = samples[-1][2] if samples else 0
            print(f"[{now - t_start:6.0f} s] open {active:5d}  opened {tot['opened']:7d}  "
                  f"closed {tot['closed']:7d}  hs-fail {tot['handshake_failures']}  "
                  f"sent {tot['sent']:8d}  recv {tot['received']:8d}  "
                  f"lost {tot['lost']}  reord {tot['reordered']}  corrupt {tot['corrupt']}  "
                  f"dropped {tot['dropped']}  rss {rss / 1024:.1f} MiB  fds {fds}",
                  flush=True)

        while True:
            now = time.monotonic()
            drain_results()
            if now >= stop_at and not stop.is_set():
                stop.set()
                print(f"[{now - t_start:6.0f} s] stopping: connections finish and close",
                      flush=True)
            if len(finished) == len(clients) or now >= hard_end:
                break
            if all(not p.is_alive() for p in clients):
                drain_results()
                break   # every client process has exited (the unfinished are reported)
            if gate.poll() is not None:
                raise RuntimeError(f"wsgate exited with {gate.returncode} during the soak")
            if now >= next_sample:
                rss, fds = proc_status(gate.pid)
                if rss is not None:
                    samples.append((now - t_start, rss, fds))
                next_sample += args.sample
            if now >= next_report:
                progress(now)
                next_report += args.report
            time.sleep(0.1)
        drain_results()
        t_load_end = time.monotonic() - t_start
        progress(time.monotonic())
        unfinished = [i for i in range(len(clients)) if i not in finished]

        # Every client has gone: wsgate should hold no connections and settle. Wait until
        # its descriptors are back to where they started (no scrape yet: a scrape
        # allocates), then sample the idle RSS, then read the metrics.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            _, fds = proc_status(gate.pid)
            if samples and fds is not None and fds <= samples[0][2]:
                break
            time.sleep(0.2)
        t_idle = time.monotonic()
        while time.monotonic() - t_idle < args.idle:
            rss, fds = proc_status(gate.pid)
            if rss is not None:
                idle.append((time.monotonic() - t_start, rss, fds))
            time.sleep(min(1.0, args.sample))
        metrics = scrape(admin_port)
    finally:
        stop.set()
        for p in clients:
            p.join(timeout=5)
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)
                p.join(timeout=5)
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
                p.join(timeout=5)
        stop_pid(gate, 60 if args.wrapper else 10)
        stop_pid(backend)
        logs.close()

    # ---------------------------------------------------------------------------------
    tot, _ = totals()
    errors = {}
    rtt_counts = [0] * (len(Hist.EDGES) + 1)
    hs_counts = [0] * (len(Hist.EDGES) + 1)
    for _, _, errs, rtt, hs in latest.values():
        for k, v in errs.items():
            errors[k] = errors.get(k, 0) + v
        rtt_counts = [a + b for a, b in zip(rtt_counts, rtt)]
        hs_counts = [a + b for a, b in zip(hs_counts, hs)]
    after = [(t, r) for t, r, _ in samples if t >= args.warmup]
    rss_all = [r for _, r, _ in samples]
    result = {
        "date": started,
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "options": {k: v for k, v in vars(args).items() if k not in ("json", "build")},
        "load_seconds": round(t_load_end, 1),
        "client": tot,
        "unfinished_client_processes": unfinished,
        "errors": errors,
        "handshake_p50_ms": (quantile(hs_counts, 0.5) or 0) * 1000,
        "handshake_p99_ms": (quantile(hs_counts, 0.99) or 0) * 1000,
        "echo_rtt_p50_ms": (quantile(rtt_counts, 0.5) or 0) * 1000,
        "echo_rtt_p99_ms": (quantile(rtt_counts, 0.99) or 0) * 1000,
        "rss_kib": {
            "first": rss_all[0] if rss_all else None,
            "at_warmup": after[0][1] if after else None,
            "last_under_load": rss_all[-1] if rss_all else None,
            "max": max(rss_all) if rss_all else None,
            "slope_after_warmup_kib_per_min": slope_kib_per_min(after),
            "slope_last_half_kib_per_min": slope_kib_per_min(after[len(after) // 2:]),
            "idle_after": idle[-1][1] if idle else None,
            "samples": len(samples),
        },
        "fds": {"first": samples[0][2] if samples else None,
                "max": max(f for _, _, f in samples) if samples else None,
                "idle_after": idle[-1][2] if idle else None},
        "wsgate": {
            "handshakes": metric_by(metrics, "wsgate_handshakes_total", "status"),
            "connections_total": metric_sum(metrics, "wsgate_connections_total"),
            "connections_active_after": metric_sum(metrics, "wsgate_connections_active"),
            "messages_client_to_upstream": metric_sum(metrics, "wsgate_messages_total",
                                                      direction="client_to_upstream"),
            "messages_by_direction": metric_by(metrics, "wsgate_messages_total", "direction"),
            "closes_by_side": metric_by(metrics, "wsgate_closes_total", "side"),
            "closes_by_code": metric_by(metrics, "wsgate_closes_total", "code"),
            "accept_errors": metric_by(metrics, "wsgate_accept_errors_total", "reason"),
        },
        "rss_series": [(round(t, 1), r) for t, r, _ in samples],
    }

    def mib(k):
        return "-" if k is None else f"{k / 1024:.1f} MiB"

    def kib_min(v):
        return "-" if v is None else f"{v:+.1f} KiB/min"

    r = result["rss_kib"]
    slope = r["slope_after_warmup_kib_per_min"]
    print()
    print(f"load {t_load_end:.0f} s; connections opened {tot['opened']}, closed {tot['closed']} "
          f"({tot['aborted']} by dropping TCP), handshake failures {tot['handshake_failures']}, "
          f"dropped {tot['dropped']}, close errors {tot['close_errors']}")
    print(f"messages sent {tot['sent']}, echoed {tot['received']}; lost {tot['lost']}, "
          f"reordered {tot['reordered']}, corrupt {tot['corrupt']}, "
          f"duplicates {tot['duplicates']}")
    print(f"handshake p50/p99 {result['handshake_p50_ms']:.1f}/{result['handshake_p99_ms']:.1f} ms "
          f"(bucket upper bounds); echo round trip p50/p99 "
          f"{result['echo_rtt_p50_ms']:.1f}/{result['echo_rtt_p99_ms']:.1f} ms")
    print(f"wsgate RSS: first {mib(r['first'])}, at warm-up ({args.warmup:g} s) "
          f"{mib(r['at_warmup'])}, last {mib(r['last_under_load'])}, max {mib(r['max'])}, "
          f"slope after warm-up {kib_min(slope)} (last half of it "
          f"{kib_min(r['slope_last_half_kib_per_min'])}); idle after {mib(r['idle_after'])}"
          f"; fds first/max/idle {result['fds']['first']}/{result['fds']['max']}/"
          f"{result['fds']['idle_after']}")
    w = result["wsgate"]
    print(f"wsgate metrics: handshakes {w['handshakes']}, connections {w['connections_total']:.0f}, "
          f"active after {w['connections_active_after']:.0f}, messages {w['messages_by_direction']}, "
          f"closes by side {w['closes_by_side']}, by code {w['closes_by_code']}, "
          f"accept errors {w['accept_errors'] or 0}")
    if errors:
        print("errors:")
        for k, v in sorted(errors.items(), key=lambda kv: -kv[1])[:20]:
            print(f"  {v:6d}  {k}")
    if unfinished:
        print(f"client processes that did not finish in time: {unfinished}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    bad = tot["lost"] + tot["reordered"] + tot["corrupt"] + tot["duplicates"] + tot["dropped"]
    return 1 if bad or unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
