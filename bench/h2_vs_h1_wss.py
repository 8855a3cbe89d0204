#!/usr/bin/python3
"""64-byte echo through one wsgate process, RFC 8441 (WebSockets over HTTP/2 streams)
next to HTTP/1.1 wss, in the same run: messages/s and wsgate CPU time per message.

Setup: wsgate (1 worker, TLS listener, ALPN h2 + http/1.1) in front of the C++ demo echo
backend; a self-signed certificate from the openssl CLI. Load: closed loop (each
WebSocket sends one masked 64-byte binary message, waits for the echo, repeats), from
--procs client processes (python3-h2 for HTTP/2, raw TLS sockets for HTTP/1.1; frames
made by hand in both). Each phase runs --duration seconds after a 1 s warmup; wsgate's
CPU time (utime + stime from /proc) is read around the measured window.

  /usr/bin/python3 bench/h2_vs_h1_wss.py --build build [--streams 100 --h2-conns 10]
"""

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import h2.config
import h2.connection
import h2.events

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 64


def frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x82, 0x80 | len(payload)) + key + masked


def tls_ctx(alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    return ctx


async def h2_connection(port, streams, stop_at, measure_from, counter):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls_ctx(["h2"]),
                                                   server_hostname="localhost")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    writer.write(conn.data_to_send())
    pending = {}
    for _ in range(streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                (":scheme", "https"), (":path", "/echo"),
                                (":authority", "localhost"), ("sec-websocket-version", "13")])
        pending[sid] = 0
    writer.write(conn.data_to_send())
    msg = frame(b"x" * SIZE)
    echo_len = 2 + SIZE
    while time.monotonic() < stop_at:
        data = await reader.read(1 << 16)
        if not data:
            raise SystemExit("h2 connection closed")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                conn.send_data(ev.stream_id, msg)
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                pending[ev.stream_id] += len(ev.data)
                while pending[ev.stream_id] >= echo_len:
                    pending[ev.stream_id] -= echo_len
                    if time.monotonic() >= measure_from:
                        counter[0] += 1
                    conn.send_data(ev.stream_id, msg)
        writer.write(conn.data_to_send())
    writer.close()


async def h1_connection(port, stop_at, measure_from, counter, delay=0.0):
    await asyncio.sleep(delay)  # connects spread out (a burst overflows the accept queue)
    reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                   ssl=tls_ctx(["http/1.1"]),
                                                   server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await reader.readuntil(b"\r\n\r\n")
    msg = frame(b"x" * SIZE)
    echo_len = 2 + SIZE
    writer.write(msg)
    while time.monotonic() < stop_at:
        await reader.readexactly(echo_len)
        if time.monotonic() >= measure_from:
            counter[0] += 1
        writer.write(msg)
    writer.close()


def client_proc(kind, port, units, per_unit, start_at, measure_from, stop_at, out):
    async def run():
        counter = [0]
        while time.time() < start_at:
            await asyncio.sleep(0.01)
        mono = time.monotonic() - time.time()
        tasks = []
        for i in range(units):
            if kind == "h2":
                tasks.append(h2_connection(port, per_unit, stop_at + mono, measure_from + mono,
                                           counter))
            else:
                tasks.append(h1_connection(port, stop_at + mono, measure_from + mono, counter,
                                           0.01 * i))
        await asyncio.gather(*tasks, return_exceptions=False)
        out.put(counter[0])
    asyncio.run(run())


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def phase(kind, gw_pid, port, units_total, per_unit, procs, duration):
    now = time.time()
    start_at, measure_from, stop_at = now + 1.0, now + 2.5, now + 2.5 + duration
    q = mp.Queue()
    per_proc = [units_total // procs + (1 if i < units_total % procs else 0) for i in range(procs)]
    ps = [mp.Process(target=client_proc, args=(kind, port, n, per_unit, start_at, measure_from,
                                               stop_at, q)) for n in per_proc]
    for p in ps:
        p.start()
    while time.time() < measure_from:
        time.sleep(0.005)
    c0 = cpu_ticks(gw_pid)
    while time.time() < stop_at:
        time.sleep(0.005)
    c1 = cpu_ticks(gw_pid)
    msgs = sum(q.get(timeout=60) for _ in ps)
    for p in ps:
        p.join(30)
    cpu_s = (c1 - c0) / os.sysconf("SC_CLK_TCK")
    return {"kind": kind, "messages": msgs, "msgs_per_s": msgs / duration,
            "wsgate_cpu_s": cpu_s, "cpu_us_per_msg": 1e6 * cpu_s / max(msgs, 1)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=10):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--streams", type=int, default=100, help="WebSockets in each phase")
    ap.add_argument("--h2-conns", type=int, default=10)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--order", default="h2,h1")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wsgate-h2bench-")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    bport, gport = free_port(), free_port()
    backend = subprocess.Popen([os.path.join(args.build, "wsgate-echo-backend"), "--listen",
                                f"127.0.0.1:{bport}"], stdout=subprocess.DEVNULL)
    conf = os.path.join(tmp, "wsgate.toml")
    with open(conf, "w") as f:
        f.write(f'workers = 1\naccess_log = ""\n[[listener]]\naddress = "127.0.0.1:{gport}"\n'
                f'[listener.tls]\ncertificates = [{{ cert = "{cert}", key = "{key}" }}]\n'
                f'[[upstream]]\nname = "echo"\nservers = ["127.0.0.1:{bport}"]\n'
                f'[[route]]\npath = "/echo"\nupstream = "echo"\n')
    gw = subprocess.Popen([os.path.join(args.build, "wsgate"), "-c", conf],
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "wsgate.err"), "w"))
    print("wsgate stderr:", os.path.join(tmp, "wsgate.err"), flush=True)
    try:
        wait_port(bport)
        wait_port(gport)
        per = args.streams // args.h2_conns
        for r in range(args.rounds):
            for kind in args.order.split(","):
                if gw.poll() is not None:
                    raise SystemExit(f"wsgate exited with {gw.returncode}")
                if kind == "h2":
                    res = phase("h2", gw.pid, gport, args.h2_conns, per, args.procs, args.duration)
                    res["setup"] = f"{args.streams} RFC 8441 streams over {args.h2_conns} TLS conns"
                else:
                    res = phase("h1", gw.pid, gport, args.streams, 1, args.procs, args.duration)
                    res["setup"] = f"{args.streams} HTTP/1.1 wss connections"
                print(f"round {r + 1} {res['setup']}: {res['msgs_per_s']:.0f} msg/s, wsgate CPU "
                      f"{res['wsgate_cpu_s']:.2f} s = {res['cpu_us_per_msg']:.1f} us/msg",
                      flush=True)
    finally:
        for p in (gw, backend):
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
