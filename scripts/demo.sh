#!/usr/bin/env bash
# Installs what is needed, builds wsgate and starts it on 127.0.0.1:8080 in front of the
# bundled echo backend (127.0.0.1:9001) with conf/wsgate.toml. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh build
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSGATE_SANITIZER_VARIANT=OFF
fi
cmake --build build -j "$(nproc)" --target wsgate wsgate-echo-backend

wait_for_port() {  # port, pid: until the port accepts or the process is gone (10 s)
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
for port in 8080 9001 9090; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use (is the demo already running?)" >&2
    exit 1
  fi
done

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

build/wsgate-echo-backend --listen 127.0.0.1:9001 --quiet &
pids+=($!)
wait_for_port 9001 "${pids[0]}" || { echo "echo backend did not start" >&2; exit 1; }
build/wsgate -c conf/wsgate.toml &
pids+=($!)
wait_for_port 8080 "${pids[1]}" || { echo "wsgate did not start" >&2; exit 1; }

reply=$(/usr/bin/python3 - <<'PY'
import asyncio, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:8080/echo") as ws:
        await ws.send("hello through wsgate")
        return await asyncio.wait_for(ws.recv(), 5)
print(asyncio.run(main()))
PY
)
cat <<MSG

wsgate is running: ws://127.0.0.1:8080/echo -> echo backend 127.0.0.1:9001
self-check: sent "hello through wsgate", got back "$reply"

Try it:
  /usr/bin/python3 -m websockets ws://127.0.0.1:8080/echo      (type a line, see it echoed)
  curl -i http://127.0.0.1:8080/                                (plain HTTP is forwarded too:
                                                                the echo backend's page)
  build/wsgate --check-config conf/wsgate.toml                  (validate a config)
  curl http://127.0.0.1:9090/metrics                            (Prometheus metrics)
  open http://127.0.0.1:9090/ in a browser                      (live dashboard)
Access log lines appear below as connections end. Ctrl-C stops wsgate and the backend.

MSG
wait "${pids[1]}"
