// A Socket.IO server (the socket.io package) for test_h1_h1_http_socketio.py:
//   node server.js NAME    listens on 127.0.0.1, port chosen by the kernel, prints
//                          "listening PORT"; every "msg" is acknowledged with
//                          {server: NAME, echo, transport} (the transport it came over).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const name = process.argv[2] || "server";
const httpServer = http.createServer();
const io = new Server(httpServer);  // default transports: polling first, then websocket
io.on("connection", (socket) => {
  socket.on("msg", (m, ack) => ack({ server: name, echo: m, transport: socket.conn.transport.name }));
});
httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
