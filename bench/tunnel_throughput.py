#!/usr/bin/env python3
"""CONNECT tunnel throughput: one TCP connection, 1 MiB writes, through wsgate's tunnel
and directly to the same sink, in the same run (alternating rounds), medians reported.

    python3 bench/tunnel_throughput.py [--wsgate build/wsgate] [--total-mib 1024] [--rounds 5]

The sink is a separate process that reads with recv_into until EOF and acknowledges the
byte count, so the time covers delivery. wsgate runs with one worker; its CPU time
(utime + stime of the whole process, /proc/<pid>/stat) is read before and after each
tunnel round and reported per MB (10^6 bytes), next to the sender's and the sink's CPU
per MB in both modes (the cost of the transfer at the ends). MB/s are 10^6 bytes per
second.
"""

import argparse
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CHUNK = 1024 * 1024


def sink(listener: socket.socket) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        conn, _ = listener.accept()
        total = 0
        while True:
            n = conn.recv_into(view)
            if n == 0:
                break
            total += n
        conn.sendall(str(total).encode())
        conn.close()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def transfer(sock: socket.socket, total: int) -> float:
    data = os.urandom(CHUNK)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        sock.sendall(data)
        sent += CHUNK
    sock.shutdown(socket.SHUT_WR)
    ack = b""
    while True:
        chunk = sock.recv(64)
        if not chunk:
            break
        ack += chunk
    elapsed = time.perf_counter() - start
    if int(ack) != total:
        raise SystemExit(f"sink got {ack!r} bytes, expected {total}")
    return elapsed


def open_tunnel(gw_port: int, sink_port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", gw_port))
    s.sendall(f"CONNECT 127.0.0.1:{sink_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            raise SystemExit(f"gateway closed: {head!r}")
        head += b
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"CONNECT refused: {head!r}")
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsgate", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                     "wsgate"))
    ap.add_argument("--total-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    total = args.total_mib * CHUNK

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    sink_port = listener.getsockname()[1]
    proc_sink = multiprocessing.Process(target=sink, args=(listener,), daemon=True)
    proc_sink.start()

    gw_port = free_port()
    tmp = tempfile.TemporaryDirectory()
    cfg = os.path.join(tmp.name, "bench.toml")
    with open(cfg, "w") as f:
        f.write(f"""workers = 1
access_log = ""
[[listener]]
address = "127.0.0.1:{gw_port}"
connect = true
[[upstream]]
name = "u"
servers = ["127.0.0.1:9"]
[[route]]
upstream = "u"
[connect]
[[connect.allow]]
cidr = "127.0.0.1/32"
ports = [{sink_port}]
""")
    gw = subprocess.Popen([args.wsgate, "-c", cfg], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", gw_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("wsgate did not start")
                time.sleep(0.05)
        direct, tunnel, cpu_ms_per_mb = [], [], []
        ends_direct, ends_tunnel = [], []  # sender + sink CPU ms per MB
        mb = total / 1e6

        def ends_cpu() -> float:
            return cpu_seconds(os.getpid()) + cpu_seconds(proc_sink.pid)

        for _ in range(args.rounds):
            s = socket.create_connection(("127.0.0.1", sink_port))
            e0 = ends_cpu()
            direct.append(total / transfer(s, total) / 1e6)
            ends_direct.append((ends_cpu() - e0) * 1000 / mb)
            s.close()
            s = open_tunnel(gw_port, sink_port)
            cpu0, e0 = cpu_seconds(gw.pid), ends_cpu()
            tunnel.append(total / transfer(s, total) / 1e6)
            cpu_ms_per_mb.append((cpu_seconds(gw.pid) - cpu0) * 1000 / mb)
            ends_tunnel.append((ends_cpu() - e0) * 1000 / mb)
            s.close()
        print(f"transfer: {args.total_mib} MiB per round in 1 MiB writes, {args.rounds} rounds, "
              "one connection")
        print(f"direct:  median {statistics.median(direct):8.0f} MB/s  "
              f"(rounds: {', '.join(f'{x:.0f}' for x in direct)})")
        print(f"tunnel:  median {statistics.median(tunnel):8.0f} MB/s  "
              f"(rounds: {', '.join(f'{x:.0f}' for x in tunnel)})")
        print(f"sender+sink CPU: direct median {statistics.median(ends_direct):.3f} ms per MB, "
              f"tunnel median {statistics.median(ends_tunnel):.3f} ms per MB")
        print(f"wsgate CPU: median {statistics.median(cpu_ms_per_mb):.3f} ms per MB "
              f"(rounds: {', '.join(f'{x:.3f}' for x in cpu_ms_per_mb)})")
    finally:
        gw.terminate()
        gw.wait(timeout=20)
        proc_sink.terminate()
        proc_sink.join(timeout=5)
        tmp.cleanup()


if __name__ == "__main__":
    main()
