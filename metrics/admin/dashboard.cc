#include "metrics/admin/dashboard.h"

namespace wsgate::metrics {
namespace {

// Kept as one raw string so the page is exactly what a browser gets. The metric names it
// reads are those of metric_names.h.
constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsgate</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
 header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; gap: 24px;
          align-items: baseline; }
 header h1 { font-size: 18px; margin: 0; }
 #state { font-size: 12px; padding: 2px 8px; border-radius: 8px; background: #3a7; }
 #state.bad { background: #c44; }
 main { padding: 16px 20px; }
 .cards { display: flex; gap: 16px; flex-wrap: wrap; }
 .card { background: #fff; border-radius: 6px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
 .card .v { font-size: 28px; font-weight: 600; }
 .card .l { font-size: 12px; color: #667; }
 canvas { background: #fff; border-radius: 6px; box-shadow: 0 1px 2px #0002; }
 .graphs { display: flex; gap: 16px; flex-wrap: wrap; margin: 16px 0; }
 table { border-collapse: collapse; background: #fff; width: 100%; font-size: 12px; }
 th, td { padding: 4px 8px; border-bottom: 1px solid #e4e6ea; text-align: left; white-space: nowrap; }
 th { background: #eef0f3; }
 td.n { text-align: right; font-variant-numeric: tabular-nums; }
 #auth { display: none; margin-bottom: 12px; }
 #error { color: #c44; }
</style>
</head>
<body>
<header><h1>wsgate</h1><span id="state">connecting</span><span id="error"></span></header>
<main>
<form id="auth">Admin token: <input id="token" type="password" size="40">
 <button>Use</button></form>
<div class="cards">
 <div class="card"><div class="v" id="active">-</div><div class="l">live WebSocket connections</div></div>
 <div class="card"><div class="v" id="total">-</div><div class="l">connections since start</div></div>
 <div class="card"><div class="v" id="msgrate">-</div><div class="l">messages/s (both ways)</div></div>
 <div class="card"><div class="v" id="byterate">-</div><div class="l">bytes/s (both ways)</div></div>
 <div class="card"><div class="v" id="rss">-</div><div class="l">resident memory</div></div>
</div>
<div class="graphs">
 <canvas id="gmsg" width="560" height="180"></canvas>
 <canvas id="gbytes" width="560" height="180"></canvas>
</div>
<table><thead><tr><th>id</th><th>client</th><th>route</th><th>server</th><th>proto</th>
 <th>subprotocol</th><th>age</th><th>idle</th><th>bytes c-&gt;u</th><th>bytes u-&gt;c</th>
 <th>msgs c-&gt;u</th><th>msgs u-&gt;c</th><th>buffered</th></tr></thead><tbody id="rows"></tbody></table>
</main>
<script>
"use strict";
const POINTS = 120;
const series = { msgC2U: [], msgU2C: [], byteC2U: [], byteU2C: [] };
let last = null;
let token = sessionStorage.getItem("wsgate-token") || "";

function headers() { return token ? { Authorization: "Bearer " + token } : {}; }

async function get(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (r.status === 401) { document.getElementById("auth").style.display = "block"; throw new Error("token required"); }
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r;
}

// Sums the samples of `name` (exact metric name) grouped by one label ("" = all).
function sum(text, name, byLabel) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== "{" && rest[0] !== " ") continue;
    const value = parseFloat(line.slice(line.lastIndexOf(" ") + 1));
    let key = "";
    if (byLabel) { const m = rest.match(new RegExp(byLabel + '="([^"]*)"')); key = m ? m[1] : ""; }
    out[key] = (out[key] || 0) + value;
  }
  return out;
}

function human(n) {
  const units = ["", "k", "M", "G", "T"]; let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + units[i];
}

function push(arr, v) { arr.push(v); if (arr.length > POINTS) arr.shift(); }

function draw(id, a, b, title) {
  const c = document.getElementById(id), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...a, ...b);
  g.fillStyle = "#1d2330"; g.font = "12px system-ui";
  g.fillText(title + "  (max " + human(max) + "/s)", 8, 14);
  const plot = (arr, color) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    arr.forEach((v, i) => {
      const x = 8 + (c.width - 16) * i / (POINTS - 1), y = c.height - 8 - (c.height - 30) * v / max;
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  };
  plot(a, "#2a7ab8"); plot(b, "#d0782a");
  g.fillStyle = "#2a7ab8"; g.fillText("client to upstream", c.width - 250, 14);
  g.fillStyle = "#d0782a"; g.fillText("upstream to client", c.width - 125, 14);
}

function cell(row, text, numeric) {
  const td = row.insertCell(); td.textContent = text; if (numeric) td.className = "n";
}

async function tick() {
  try {
    const text = await (await get("/metrics")).text();
    const now = performance.now() / 1000;
    const active = sum(text, "wsgate_connections_active", "")[""] || 0;
    const total = sum(text, "wsgate_connections_total", "")[""] || 0;
    const msgs = sum(text, "wsgate_messages_total", "direction");
    const bytes = sum(text, "wsgate_bytes_total", "direction");
    const rss = sum(text, "process_resident_memory_bytes", "")[""] || 0;
    const cur = { t: now, mc: msgs.client_to_upstream || 0, mu: msgs.upstream_to_client || 0,
                  bc: bytes.client_to_upstream || 0, bu: bytes.upstream_to_client || 0 };
    if (last) {
      const dt = Math.max(0.001, cur.t - last.t);
      push(series.msgC2U, (cur.mc - last.mc) / dt); push(series.msgU2C, (cur.mu - last.mu) / dt);
      push(series.byteC2U, (cur.bc - last.bc) / dt); push(series.byteU2C, (cur.bu - last.bu) / dt);
      document.getElementById("msgrate").textContent = human(((cur.mc - last.mc) + (cur.mu - last.mu)) / dt);
      document.getElementById("byterate").textContent = human(((cur.bc - last.bc) + (cur.bu - last.bu)) / dt) + "B";
    }
    last = cur;
    document.getElementById("active").textContent = String(active);
    document.getElementById("active").dataset.updated = "1";
    document.getElementById("total").textContent = String(total);
    document.getElementById("rss").textContent = human(rss) + "B";
    draw("gmsg", series.msgC2U, series.msgU2C, "messages/s");
    draw("gbytes", series.byteC2U, series.byteU2C, "bytes/s");

    const table = await (await get("/connections?limit=200")).json();
    const body = document.getElementById("rows");
    body.textContent = "";
    for (const c of table.connections) {
      const r = body.insertRow();
      cell(r, c.id); cell(r, c.client); cell(r, c.route); cell(r, c.server); cell(r, c.protocol);
      cell(r, c.subprotocol || "-"); cell(r, c.age_seconds.toFixed(1) + "s", true);
      cell(r, c.idle_seconds.toFixed(1) + "s", true);
      cell(r, human(c.client_to_upstream.bytes), true); cell(r, human(c.upstream_to_client.bytes), true);
      cell(r, human(c.client_to_upstream.messages), true); cell(r, human(c.upstream_to_client.messages), true);
      cell(r, human(c.buffered_bytes), true);
    }
    const ready = await fetch("/ready", { cache: "no-store" });
    const state = document.getElementById("state");
    state.textContent = ready.ok ? "ready" : "draining";
    state.className = ready.ok ? "" : "bad";
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = String(e.message || e);
  }
}

document.getElementById("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("wsgate-token", token);
  document.getElementById("auth").style.display = "none";
  tick();
});
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view dashboard_html() {
  return kPage;
}

}  // namespace wsgate::metrics
