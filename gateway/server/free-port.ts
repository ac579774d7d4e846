// A port nothing listens on yet, for a server configured with port 0 that must be bound
// more than once (uws apps, workers): SO_REUSEPORT groups form only on a named port.

import { createServer } from "node:net";

export function freePort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, ip, () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}
