// Socket.IO clients (the socket.io-client package) for test_h1_h1_http_socketio.py:
//   node client.js URL N   opens N clients with the default transports (HTTP
//                          long-polling first, then the upgrade to WebSocket) and cookies
//                          kept (withCredentials: the gateway's affinity cookie); each
//                          sends 3 messages, waits for the upgrade, sends 3 more. Prints
//                          one JSON line per client: {servers, transports, upgraded, error}.
//                          Exits when all are done or after 20 s.
"use strict";
const { io } = require("socket.io-client");

const url = process.argv[2];
const n = Number(process.argv[3] || "1");

function run(i) {
  return new Promise((resolve) => {
    const result = { client: i, servers: [], transports: [], upgraded: false, error: null };
    const socket = io(url, { withCredentials: true, reconnection: false, timeout: 10000 });
    const finish = (error) => {
      result.error = error;
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish("timeout"), 15000);
    const send = async (k) => {
      const r = await socket.timeout(5000).emitWithAck("msg", `c${i}m${k}`);
      if (r.echo !== `c${i}m${k}`) throw new Error(`bad echo ${JSON.stringify(r)}`);
      result.servers.push(r.server);
      result.transports.push(r.transport);
    };
    socket.on("connect_error", (e) => { clearTimeout(timer); finish(`connect_error: ${e.message}`); });
    socket.on("connect", async () => {
      try {
        for (let k = 0; k < 3; k++) await send(k);
        if (socket.io.engine.transport.name !== "websocket")
          await new Promise((ok) => socket.io.engine.once("upgrade", ok));
        result.upgraded = true;
        for (let k = 3; k < 6; k++) await send(k);
        clearTimeout(timer);
        finish(null);
      } catch (e) {
        clearTimeout(timer);
        finish(String(e));
      }
    });
  });
}

const deadline = setTimeout(() => process.exit(2), 20000);
Promise.all(Array.from({ length: n }, (_, i) => run(i))).then((results) => {
  for (const r of results) process.stdout.write(JSON.stringify(r) + "\n");
  clearTimeout(deadline);
  process.exit(results.every((r) => r.error === null) ? 0 : 1);
});
