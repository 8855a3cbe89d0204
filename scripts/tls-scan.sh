#!/usr/bin/env bash
# Scans a wsgate TLS listener with the default TLS settings using testssl.sh (Debian's
# package: `apt-get install testssl.sh`, or scripts/install-deps.sh bench).
#
#   scripts/tls-scan.sh [--build DIR] [--out DIR] [--path /P] [-- EXTRA TESTSSL ARGS...]
#
#   --build DIR  where wsgate and wsgate-echo-backend are (default: build-test)
#   --out DIR    where to keep the config, certificates, logs and testssl's
#                text/JSON output (default: a new folder under /tmp, printed at the end)
#   --path /P    the path testssl.sh's HTTP checks request (default /, which has no
#                route: wsgate answers 404; /echo is routed: a plain GET gets 426)
#   after --     passed to testssl.sh, e.g. `-- --fast`, or `-- --headers` for the
#                HTTP header checks only
#
# What it does: makes a self-signed RSA-2048 and a self-signed ECDSA P-256 certificate
# for localhost/127.0.0.1 with the openssl CLI, starts the echo backend and wsgate (one
# worker, one TLS listener whose [listener.tls] sets only `certificates`, so protocols,
# ciphers and suites are wsgate's defaults) on kernel-chosen free ports on 127.0.0.1,
# runs testssl.sh against it, and stops both processes by their PIDs.
# Findings above INFO are listed at the end in two groups: those of the self-signed test
# certificate (chain of trust, revocation, CAA: expected) and the rest, which come from
# wsgate. Exit status: 1 when one of the latter is above LOW, 2 when testssl.sh itself
# failed, else 0. Talks only to 127.0.0.1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$here/build-test"
out=""
path="/"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --path) path="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--build DIR] [--out DIR] [--path /P] [-- TESTSSL ARGS]" >&2; exit 2 ;;
  esac
done

testssl_bin="$(command -v testssl || command -v testssl.sh || true)"
[ -n "$testssl_bin" ] || { echo "testssl.sh not installed (apt-get install testssl.sh)" >&2; exit 2; }
for b in wsgate wsgate-echo-backend; do
  [ -x "$build/$b" ] || { echo "$build/$b not built" >&2; exit 2; }
done

if [ -z "$out" ]; then out="$(mktemp -d /tmp/wsgate-tls-scan.XXXXXX)"; fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() {  # wait_for SECONDS PID COMMAND...: polls COMMAND until it succeeds
  local end=$((SECONDS + $1)) pid=$2; shift 2
  until "$@" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited during startup" >&2; return 1; }
    [ $SECONDS -lt $end ] || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.1
  done
}

backend_pid=""
gate_pid=""
stop() {  # only the processes this script started, by PID
  for pid in $gate_pid $backend_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}
trap stop EXIT
trap 'exit 130' INT TERM

cd "$out"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout rsa.key -out rsa.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout ecdsa.key -out ecdsa.pem 2>/dev/null

tls_port="$(free_port)"
backend_port="$(free_port)"
cat > wsgate.toml <<EOF
# Written by scripts/tls-scan.sh: default TLS settings, only the certificates are set.
workers = 1
drain_timeout = "1s"
access_log = ""

[[listener]]
address = "127.0.0.1:$tls_port"
[listener.tls]
certificates = [{ cert = "rsa.pem", key = "rsa.key" },
                { cert = "ecdsa.pem", key = "ecdsa.key" }]

[[upstream]]
name = "echo"
servers = ["127.0.0.1:$backend_port"]

[[route]]
path = "/echo"
upstream = "echo"
EOF

"$build/wsgate-echo-backend" --listen "127.0.0.1:$backend_port" >backend.log 2>&1 </dev/null &
backend_pid=$!
wait_for 10 "$backend_pid" grep -q "echo backend listening on" backend.log

"$build/wsgate" -c wsgate.toml >wsgate.log 2>&1 </dev/null &
gate_pid=$!
wait_for 10 "$gate_pid" openssl s_client -connect "127.0.0.1:$tls_port" -brief </dev/null

echo "$("$build/wsgate" --version 2>&1 | head -1) on 127.0.0.1:$tls_port (pid $gate_pid)"
"$testssl_bin" --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -m1 -o 'testssl[^ ]* *[0-9][0-9.a-z+~-]*' || true
rm -f testssl.txt testssl.json
set +e
# --warnings off: no interactive questions; --ip: never resolve anything. No --severity:
# the JSON keeps every finding (INFO and OK too); the summary below filters.
"$testssl_bin" --quiet --color 0 --warnings off --ip 127.0.0.1 \
  --logfile testssl.txt --jsonfile testssl.json "${extra[@]}" "https://127.0.0.1:$tls_port$path"
rc=$?
set -e
echo
echo "testssl.sh exit code $rc; output, config and logs in $out"
python3 - testssl.json "$rc" <<'PY'
import json, sys
rank = {"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
name = {0: "none above INFO", **{v: k for k, v in rank.items()}}
with open(sys.argv[1]) as f:
    items = [i for i in json.load(f) if i.get("severity") in rank]
def from_cert(i):  # properties of the self-signed test certificate, not of wsgate
    return i["id"].startswith(("cert_", "DNS_CAArecord"))
worst = {}
for title, group in (("from the self-signed test certificate (expected)", True),
                     ("from wsgate", False)):
    shown = sorted((i for i in items if from_cert(i) == group), key=lambda i: -rank[i["severity"]])
    print(f"findings above INFO {title}:")
    for i in shown:
        print(f'  {i["severity"]:8} {i["id"]}: {i["finding"]}')
    if not shown:
        print("  (none)")
    worst[group] = max((rank[i["severity"]] for i in shown), default=0)
print(f"worst: certificate {name[worst[True]]}, wsgate {name[worst[False]]}")
sys.exit(2 if sys.argv[2] != "0" else 1 if worst[False] > rank["LOW"] else 0)
PY
