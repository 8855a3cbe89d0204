#!/usr/bin/python3
"""Bulk WebSocket traffic one way: a backend pushes large binary frames to a client that
only reads, through wsgate, nginx, HAProxy and nghttpx in one run (issue 13).

Each proxy runs with one worker (pinned to CPU 0; the client and backend on CPU 1) in
front of the same backend, which answers the upgrade and then sends --total MiB in
frames of --frame MiB with blocking sendall (C speed); the client reads with recv_into
into one buffer and checks only the byte count. Reported: the proxy's CPU time
(utime+stime of its processes, from /proc) per MiB relayed, and MiB/s; medians of
--rounds interleaved rounds, the proxies' order rotating per round. This is where
wsgate's splice(2) of large frames (proxy/relay/pipe.h) shows: the echo bench
(compare.py --size 1048576) is dominated by its round trips, not by moving bytes.

  bench/ws_push.py --build build [--total 2048] [--frame 4] [--rounds 3] [--also NAME=PATH]

Talks only to 127.0.0.1. Every process it starts is stopped by its PID.
"""

import argparse
import base64
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the proxies' configurations and /proc accounting)

MiB = 1024 * 1024
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def serve(port, total_mib, frame_mib):
    """The backend: every connection gets the upgrade answered, then the frames."""
    size = frame_mib * MiB
    frame = bytes([0x82, 127]) + size.to_bytes(8, "big") + b"\xab" * size
    count = max(1, total_mib // frame_mib)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)

    def one(c):
        try:
            head = compare.read_head(c)
            key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                   if ln.lower().startswith(b"sec-websocket-key:")][0]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            for _ in range(count):
                c.sendall(frame)
            c.settimeout(30)
            c.recv(1)  # until the client goes
        except (OSError, IndexError):
            pass
        finally:
            c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def pull(port, total_mib, frame_mib):
    """The client: upgrade, then read every frame's bytes; returns seconds taken."""
    want = max(1, total_mib // frame_mib) * (frame_mib * MiB + 10)
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /push HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise RuntimeError("no 101")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.decode(errors="replace"))
    buf = bytearray(4 * MiB)
    got, start = 0, time.monotonic()
    while got < want:
        n = s.recv_into(buf)
        if n == 0:
            raise RuntimeError(f"closed after {got} of {want} bytes")
        got += n
    took = time.monotonic() - start
    s.close()
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--total", type=int, default=2048, help="MiB per transfer")
    ap.add_argument("--frame", type=int, default=4, help="MiB per frame")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="wsgate,nginx,haproxy,nghttpx")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.total, args.frame)
        return

    work = tempfile.mkdtemp(prefix="wsgate-push-")
    backend_port = compare.free_port()
    backend = subprocess.Popen(["taskset", "-c", "1", sys.executable, os.path.abspath(__file__),
                                "--serve", str(backend_port), "--total", str(args.total),
                                "--frame", str(args.frame)])
    makers = {
        "wsgate": lambda: compare.Wsgate(work, backend_port,
                                         os.path.join(os.path.abspath(args.build), "wsgate")),
        "nginx": lambda: compare.Nginx(work, backend_port),
        "haproxy": lambda: compare.Haproxy(work, backend_port),
        "nghttpx": lambda: compare.Nghttpx(work, backend_port),
    }
    names = [n for n in args.only.split(",") if n in makers]
    for also in args.also:
        name, path = also.split("=", 1)
        makers[name] = lambda p=os.path.abspath(path), n=name: compare.Wsgate(work, backend_port,
                                                                              p, n)
        names.insert(1, name)
    results = {n: {"cpu_ms_per_mib": [], "mib_per_s": []} for n in names}
    try:
        compare.wait_port(backend_port, backend)
        os.sched_setaffinity(0, {1})
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                proxy = makers[name]()
                port = proxy.start()
                try:
                    for pid in compare.process_tree(proxy.proc.pid):
                        os.sched_setaffinity(pid, {0})
                    pull(port, 64, args.frame)  # warm-up
                    cpu0 = compare.cpu_seconds(proxy.proc.pid)
                    took = pull(port, args.total, args.frame)
                    cpu = compare.cpu_seconds(proxy.proc.pid) - cpu0
                finally:
                    proxy.stop()
                mib = max(1, args.total // args.frame) * args.frame
                results[name]["cpu_ms_per_mib"].append(cpu * 1000 / mib)
                results[name]["mib_per_s"].append(mib / took)
                print(f"round {rnd + 1} {name}: {cpu * 1000 / mib:.3f} ms CPU per MiB, "
                      f"{mib / took:.0f} MiB/s", flush=True)
    finally:
        backend.terminate()
        backend.wait(10)

    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    print(f"\nWebSocket push: {args.total} MiB in {args.frame} MiB frames, backend -> client, "
          f"one worker, median of {args.rounds} rounds\n")
    print("| proxy | CPU ms per MiB | MiB/s |")
    print("| --- | ---: | ---: |")
    for n in names:
        print(f"| {n} | {med[n]['cpu_ms_per_mib']:.3f} | {med[n]['mib_per_s']:.0f} |")
    peers = [n for n in names if n in ("nginx", "haproxy", "nghttpx")]
    if "wsgate" in med and peers:
        best = min(peers, key=lambda n: med[n]["cpu_ms_per_mib"])
        print(f"\nwsgate CPU per MiB / best peer ({best}): "
              f"{med['wsgate']['cpu_ms_per_mib'] / med[best]['cpu_ms_per_mib']:.2f}")
    for also in args.also:
        name = also.split("=", 1)[0]
        print(f"wsgate CPU per MiB / {name}: "
              f"{med['wsgate']['cpu_ms_per_mib'] / med[name]['cpu_ms_per_mib']:.2f}")


if __name__ == "__main__":
    main()
