// An HTTP/1.1 upstream for the HTTP forwarding tests, on Node's own http module (its
// llhttp parser decodes Content-Length and chunked bodies, keeps connections alive and
// refuses malformed requests; none of it is wsgate's code).
//
//   node http_backend.js NAME      listens on 127.0.0.1, port chosen by the kernel, and
//                                  prints "listening PORT" on stdout
//
// Endpoints (any other path: 200 with the /info JSON):
//   /info                  JSON: server name, method, url, headers, the TCP connection's
//                          number and how many requests it carried so far
//   /upload                reads the whole body, answers JSON {bytes, sha256}
//   /download?bytes=N&cl=1 N pseudo-random bytes (Content-Length with cl=1, else chunked);
//                          and the digest of those bytes in the X-Body-Sha256 header
//   /slow-head?ms=N        answers after N ms
//   /status?code=N&only=NAME  answers N (with the /info JSON) when this server is NAME (or
//                          without only=), else 200 as /info
//   /_stats                JSON {connections, requests: [[method, url], ...]} (not counted)
"use strict";
const http = require("http");
const crypto = require("crypto");

const name = process.argv[2] || "backend";
let connections = 0;
const requests = [];

function payload(n) {
  // Deterministic bytes: a 64 KiB SHA-256 counter-mode block, repeated with each copy's
  // first 8 bytes set to its index (so a reordered or repeated piece changes the digest).
  const block = Buffer.alloc(65536);
  for (let i = 0; i * 32 < block.length; i++)
    crypto.createHash("sha256").update(`${name}:${i}`).digest().copy(block, i * 32);
  const out = Buffer.alloc(n);
  for (let off = 0, k = 0; off < n; off += block.length, k++) {
    block.writeBigUInt64BE(BigInt(k), 0);
    block.copy(out, off, 0, Math.min(block.length, n - off));
  }
  return out;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname !== "/_stats") requests.push([req.method, req.url]);
  const conn = req.socket;
  conn.requests = (conn.requests || 0) + 1;
  const info = {
    server: name, method: req.method, url: req.url, headers: req.rawHeaders,
    connection: conn.number, connection_requests: conn.requests,
  };
  if (url.pathname === "/_stats") {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({connections, requests}));
    return;
  }
  if (url.pathname === "/upload") {
    const h = crypto.createHash("sha256");
    let bytes = 0;
    req.on("data", (d) => { h.update(d); bytes += d.length; });
    req.on("end", () => {
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify({...info, bytes, sha256: h.digest("hex")}));
    });
    return;
  }
  if (url.pathname === "/download") {
    const n = Number(url.searchParams.get("bytes") || "0");
    const body = payload(n);
    res.setHeader("X-Body-Sha256", crypto.createHash("sha256").update(body).digest("hex"));
    if (url.searchParams.get("cl") === "1") res.setHeader("Content-Length", String(n));
    // Written in 64 KiB pieces, honouring the socket's backpressure.
    let off = 0;
    const more = () => {
      while (off < n) {
        const piece = body.subarray(off, Math.min(n, off + 65536));
        off += piece.length;
        if (!res.write(piece)) { res.once("drain", more); return; }
      }
      res.end();
    };
    more();
    return;
  }
  if (url.pathname === "/cut") {
    // Promises twice the content it sends, then drops the connection mid-response.
    const n = Number(url.searchParams.get("bytes") || "1024");
    res.setHeader("Content-Length", String(2 * n));
    res.write(payload(n), () => setTimeout(() => conn.destroy(), 50));
    return;
  }
  if (url.pathname === "/status") {
    const only = url.searchParams.get("only");
    if (only === null || only === name) res.statusCode = Number(url.searchParams.get("code"));
    req.resume();
    req.on("end", () => res.end(JSON.stringify(info)));
    return;
  }
  if (url.pathname === "/slow-head") {
    setTimeout(() => res.end("late\n"), Number(url.searchParams.get("ms") || "0"));
    return;
  }
  req.resume();
  req.on("end", () => {
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Set-Cookie", "app=1; Path=/");
    res.end(JSON.stringify(info));
  });
});
server.on("connection", (socket) => { socket.number = ++connections; });
server.keepAliveTimeout = 30000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
