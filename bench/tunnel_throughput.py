#!/usr/bin/python3
"""Throughput of one HTTP CONNECT tunnel through wsgate, next to the same transfer made
directly to the target, in the same run.

One TCP connection, 1 MiB writes, --size bytes (default 1 GiB) each way:
  up    client -> target (the target counts and answers "OK" after the last byte)
  down  target -> client (the target writes --size bytes, then closes)
Both through `CONNECT 127.0.0.1:<target port>` on wsgate (one worker, an allow rule for
the target only) and straight to the target. For each: MB/s (1 MB = 10^6 bytes) and CPU
time per MB: wsgate's (utime+stime from /proc/<pid>/stat) and everything's (client +
target + wsgate), so the direct transfer has a figure to compare with. Medians of
--rounds rounds.

  bench/tunnel_throughput.py --build build [--size-mib 1024] [--rounds 3]

Talks only to 127.0.0.1. Every process it starts is stopped by its PID.
"""

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHUNK = 1 << 20

# The target: "UP <n>\n" -> read n bytes, answer "OK\n"; "DOWN <n>\n" -> write n bytes.
TARGET = r"""
import socket, sys, threading
CHUNK = 1 << 20
def serve(c):
    with c:
        f = b""
        while not f.endswith(b"\n"):
            b = c.recv(1)
            if not b: return
            f += b
        verb, n = f.split()
        n = int(n)
        if verb == b"UP":
            buf = bytearray(CHUNK); view = memoryview(buf); left = n
            while left:
                got = c.recv_into(view, min(left, CHUNK))
                if not got: return
                left -= got
            c.sendall(b"OK\n")
        else:
            data = b"\xa5" * CHUNK; left = n
            while left:
                k = min(left, CHUNK); c.sendall(data[:k] if k < CHUNK else data); left -= k
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536): pass
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {deadline_s} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def open_connection(gw_port, target_port):
    if gw_port is None:
        return socket.create_connection(("127.0.0.1", target_port), timeout=30)
    s = socket.create_connection(("127.0.0.1", gw_port), timeout=30)
    s.sendall(f"CONNECT 127.0.0.1:{target_port} HTTP/1.1\r\n"
              f"Host: 127.0.0.1:{target_port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            raise RuntimeError("tunnel closed before its answer")
        head += b
        if len(head) > 4096:
            raise RuntimeError("answer head too long")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("CONNECT refused: " + head.decode(errors="replace").splitlines()[0])
    return s


def transfer(direction, size, gw_port, target_port):
    """Seconds for one transfer of `size` bytes."""
    s = open_connection(gw_port, target_port)
    with s:
        start = time.monotonic()
        if direction == "up":
            s.sendall(f"UP {size}\n".encode())
            data = b"\x5a" * CHUNK
            left = size
            while left:
                k = min(left, CHUNK)
                s.sendall(data if k == CHUNK else data[:k])
                left -= k
            answer = b""
            while not answer.endswith(b"\n"):
                b = s.recv(16)
                if not b:
                    raise RuntimeError("target closed before OK")
                answer += b
            if answer != b"OK\n":
                raise RuntimeError(f"target answered {answer!r}")
        else:
            s.sendall(f"DOWN {size}\n".encode())
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            got = 0
            while got < size:
                n = s.recv_into(view)
                if n == 0:
                    raise RuntimeError(f"closed after {got} of {size} bytes")
                got += n
        return time.monotonic() - start


def measure(direction, size, gw_pid, gw_port, target_pid, target_port):
    gw0 = cpu_seconds(gw_pid)
    t0 = cpu_seconds(target_pid)
    c0 = self_cpu()
    seconds = transfer(direction, size, gw_port, target_port)
    gw_cpu = cpu_seconds(gw_pid) - gw0
    total_cpu = gw_cpu + (cpu_seconds(target_pid) - t0) + (self_cpu() - c0)
    mb = size / 1e6
    return {"mbps": mb / seconds, "gw_ms_per_mb": 1000 * gw_cpu / mb,
            "total_ms_per_mb": 1000 * total_cpu / mb}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory with wsgate")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    size = args.size_mib << 20
    procs = []
    tmp = tempfile.TemporaryDirectory(prefix="wsgate-bench-tunnel-")
    try:
        target_port = free_port()
        target = subprocess.Popen([sys.executable, "-c", TARGET, str(target_port)],
                                  stdout=subprocess.PIPE)
        procs.append(target)
        wait_port(target_port, target)
        gw_port = free_port()
        conf = os.path.join(tmp.name, "wsgate.toml")
        with open(conf, "w") as f:
            f.write(f'workers = 1\naccess_log = ""\n\n'
                    f'[[listener]]\naddress = "127.0.0.1:{gw_port}"\nconnect = true\n\n'
                    f'[[upstream]]\nname = "none"\nservers = ["127.0.0.1:9"]\n\n'
                    f'[[route]]\nhost = "*"\npath = "/"\nupstream = "none"\n\n'
                    f'[connect]\nbuffer_size = "256KiB"\n\n'
                    f'[[connect.allow]]\ncidr = "127.0.0.1/32"\nports = [{target_port}]\n')
        gw = subprocess.Popen([os.path.join(args.build, "wsgate"), "-c", conf],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(gw)
        wait_port(gw_port, gw)
        results = {}
        for direction in ("up", "down"):
            for path, port in (("direct", None), ("tunnel", gw_port)):
                transfer(direction, 64 << 20, port, target_port)  # warm-up
                rounds = [measure(direction, size, gw.pid, port, target.pid, target_port)
                          for _ in range(args.rounds)]
                results[(direction, path)] = {k: statistics.median(r[k] for r in rounds)
                                              for k in rounds[0]}
        print(f"one connection, 1 MiB writes, {args.size_mib} MiB per transfer, "
              f"median of {args.rounds} rounds")
        print(f"{'direction':<10}{'path':<8}{'MB/s':>9}{'wsgate CPU ms/MB':>19}"
              f"{'all CPU ms/MB':>16}")
        for (direction, path), r in results.items():
            gw_cpu = f"{r['gw_ms_per_mb']:.3f}" if path == "tunnel" else "-"
            print(f"{direction:<10}{path:<8}{r['mbps']:>9.0f}{gw_cpu:>19}"
                  f"{r['total_ms_per_mb']:>16.3f}")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
