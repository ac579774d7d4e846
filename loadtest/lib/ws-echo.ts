// The websocket row's backend: a WebSocket echo server (the `ws` package), run by the
// bench as a process of its own, pinned to the backend's cores like the HTTP backend.
//
//   node dist/loadtest/lib/ws-echo.js PORT
//
// Every message comes back as it came (text or binary), without compression
// (permessage-deflate off: the row measures the proxies, not zlib).

import { WebSocketServer } from "ws";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node ws-echo.js PORT");
  process.exit(2);
}
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", () => ws.terminate());
});
wss.on("listening", () => console.log(`ws echo on 127.0.0.1:${port}`));
for (const sig of ["SIGTERM", "SIGINT"] as const)
  process.once(sig, () => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => process.exit(0));
  });
