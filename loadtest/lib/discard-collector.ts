// The tracing row's span collector: a node:http server that reads every POST (Zipkin's
// /api/v2/spans or OTLP's /v1/traces) to its end, counts it and discards it, run by the
// bench as a process of its own, pinned to the backend's cores.
//
//   node dist/loadtest/lib/discard-collector.js PORT

import { createServer } from "node:http";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node discard-collector.js PORT");
  process.exit(2);
}
let posts = 0;
let bytes = 0;
const server = createServer((req, res) => {
  req.on("data", (c: Buffer) => {
    bytes += c.length;
  });
  req.on("end", () => {
    posts++;
    res.writeHead(202).end();
  });
});
server.listen(port, "127.0.0.1", () => console.log(`collector on 127.0.0.1:${port}`));
for (const sig of ["SIGTERM", "SIGINT"] as const)
  process.once(sig, () => {
    console.log(`collector: ${posts} posts, ${bytes} bytes`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
