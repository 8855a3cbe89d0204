#!/usr/bin/env python3
"""Heap per idle ws:// WebSocket, by allocation site (valgrind massif).

Runs wsgate (one worker, the same config as bench/compare.py) under
`valgrind --tool=massif`, takes a detailed snapshot (vgdb) before and after opening
N idle WebSockets through it, and prints the heap (useful bytes + the allocator's
headers) per WebSocket, with the allocation sites that grew most.

  /usr/bin/python3 bench/idle_heap.py --build build --idle 1000 [--depth 8]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import free_port, hold_idle, wait_port  # noqa: E402

NODE = re.compile(r"^( *)n(\d+): (\d+) (.*)$")


def parse_snapshot(path):
    """The snapshot's total heap and {stack (tuple of frames): bytes} for its leaves."""
    with open(path) as f:
        text = f.read()
    heap = int(re.search(r"mem_heap_B=(\d+)", text).group(1))
    extra = int(re.search(r"mem_heap_extra_B=(\d+)", text).group(1))
    leaves, stack = {}, []
    for line in text.splitlines():
        m = NODE.match(line)
        if not m:
            continue
        depth, children, size, what = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        what = re.sub(r"^0x[0-9A-F]+: ", "", what)
        what = re.sub(r" \(in /[^)]*\)$", "", what)
        del stack[depth:]
        stack.append(what)
        if children == 0 and depth > 0:
            leaves[tuple(stack[1:])] = leaves.get(tuple(stack[1:]), 0) + size
    return heap + extra, heap, leaves


def snapshot(pid, path):
    subprocess.run(["vgdb", f"--pid={pid}", "detailed_snapshot", path], check=True,
                   capture_output=True, timeout=120)
    for _ in range(100):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return parse_snapshot(path)
        time.sleep(0.1)
    raise RuntimeError("no snapshot")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--binary", help="wsgate binary (default: BUILD/wsgate)")
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=6, help="stack frames shown per site")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    binary = args.binary or os.path.join(args.build, "wsgate")
    work = tempfile.mkdtemp(prefix="idle-heap-")
    backend_port, port = free_port(), free_port()
    backend = subprocess.Popen([os.path.join(args.build, "wsgate-echo-backend"), "--listen",
                                f"127.0.0.1:{backend_port}", "--quiet"])
    cfg = os.path.join(work, "wsgate.toml")
    with open(cfg, "w") as f:
        f.write(f"""workers = 1
access_log = ""
[[listener]]
address = "127.0.0.1:{port}"
[[upstream]]
name = "echo"
servers = ["127.0.0.1:{backend_port}"]
[[route]]
path = "/"
upstream = "echo"
idle_timeout = "1h"
""")
    log = open(os.path.join(work, "massif.log"), "w")
    gw = subprocess.Popen(["valgrind", "--tool=massif", "--vgdb=yes", "--depth=40",
                           f"--massif-out-file={work}/massif.out", binary, "-c", cfg],
                          stdout=log, stderr=log)
    try:
        wait_port(port, gw, deadline_s=60.0)
        warm = hold_idle(port, 20)  # code paths and pools touched once
        time.sleep(1)
        total0, _, leaves0 = snapshot(gw.pid, f"{work}/before")
        socks = hold_idle(port, args.idle)
        time.sleep(1)
        total1, _, leaves1 = snapshot(gw.pid, f"{work}/after")
        print(f"heap per idle WebSocket: {(total1 - total0) / args.idle:.0f} B "
              f"(useful + allocator headers, {args.idle} connections)")
        grown = {}
        for stack in set(leaves0) | set(leaves1):
            key = stack[:args.depth]
            grown[key] = grown.get(key, 0) + leaves1.get(stack, 0) - leaves0.get(stack, 0)
        for key, diff in sorted(grown.items(), key=lambda kv: -kv[1])[:args.top]:
            if diff / args.idle < 4:
                break
            print(f"{diff / args.idle:8.0f} B  " + "\n            <- ".join(key))
        del socks, warm
    finally:
        gw.terminate()
        gw.wait(30)
        backend.terminate()
        backend.wait(10)


if __name__ == "__main__":
    main()
