"""A small HTTP auth service for the forward-auth tests (test_forward_auth.py), on the
standard library's http.server (none of it wsgate's code), run as its own process:

    /usr/bin/python3 forward_auth_service.py [--port N] [--tls CERT KEY]
        prints "listening PORT" (127.0.0.1, port N or one chosen by the kernel) and serves
        until SIGTERM; with --tls, over TLS with that certificate

HTTP/1.1 with keep-alive; one thread per connection. By the request's Authorization:
    Bearer good      200, X-User: alice, X-Internal: no (not for the upstream); so is
                     any token starting with "good-" (bench/forward_auth_cost.py's users)
    Bearer slow      waits 10 s (longer than any test's timeout), then 200
    Bearer redirect  302 to a login page
    anything else    401, WWW-Authenticate, application/json body, X-Internal
GET /_stats (not counted): JSON {"requests": n, "ports": [distinct client ports],
"seen": [{"path", "headers"}...]} - what reached the service and over which connections.
"""

import argparse
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SEEN = []      # [{"path": ..., "headers": [[name, value], ...]}]
PORTS = set()  # client (gateway) ports the requests came from
DENY_BODY = b'{"error":"invalid_token","detail":"the token is not valid"}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, headers, body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            with LOCK:
                body = json.dumps({"requests": len(SEEN), "ports": sorted(PORTS),
                                   "seen": SEEN}).encode()
            self._send(200, [("Content-Type", "application/json"), ("Connection", "close")],
                       body)
            self.close_connection = True
            return
        with LOCK:
            SEEN.append({"path": self.path, "headers": [[k, v] for k, v in self.headers.items()]})
            PORTS.add(self.client_address[1])
        auth = self.headers.get("Authorization", "")
        if auth == "Bearer good" or auth.startswith("Bearer good-"):
            self._send(200, [("X-User", "alice"), ("X-Internal", "no")])
        elif auth == "Bearer slow":
            time.sleep(10)
            try:
                self._send(200, [("X-User", "slowpoke")])
            except OSError:
                pass
        elif auth == "Bearer redirect":
            self._send(302, [("Location", "https://login.example/?next=1"),
                             ("X-Internal", "no")])
        else:
            self._send(401, [("WWW-Authenticate", 'Bearer realm="test", error="invalid_token"'),
                             ("Content-Type", "application/json"), ("X-Internal", "no")],
                       DENY_BODY)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*args.tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
