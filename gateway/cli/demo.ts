// `lintel demo [--log-format F] [--log-level L]`: the first thing to run. Starts the
// sample application and lintel on configs/demo.yaml, and prints what to try.

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type SamplePorts, startSampleServices } from "../demo/sample-services.js";
import { commandLogger, LOG_FLAGS, LOG_FLAGS_USAGE, startFromFile } from "./run.js";

const DEMO_CONFIG = fileURLToPath(new URL("../../../configs/demo.yaml", import.meta.url));
// Matches configs/demo/disco.
const PORTS: SamplePorts = { welcome: 9100, user: 9101, booking: 9102, concert: 9103 };
const EDGE = { host: "127.0.0.1", port: 4140 };

const TRY = `lintel demo: an edge router on http://${EDGE.host}:${EDGE.port} in front of a sample app.

Try:
  curl http://${EDGE.host}:${EDGE.port}/
  curl -H 'Host: user' http://${EDGE.host}:${EDGE.port}/users/tom/bookings
  curl -H 'Host: concert' http://${EDGE.host}:${EDGE.port}/concerts/c-1
  curl -H 'Host: nobody' -i http://${EDGE.host}:${EDGE.port}/          (502 with l5d-err)
  curl -H 'Host: user' -H 'l5d-dtab: /svc/user => /srv/concert' http://${EDGE.host}:${EDGE.port}/concerts/c-2
  curl 'http://127.0.0.1:9990/delegator.json?namespace=demo&path=/svc/user'
  npx lintel delegate configs/demo.yaml /svc/user
Stop with Ctrl-C.
`;

export async function demoCommand(args: string[], out: (s: string) => void): Promise<number> {
  const usage = `usage: lintel demo ${LOG_FLAGS_USAGE}`;
  let values: { "log-format"?: string; "log-level"?: string };
  try {
    values = parseArgs({ args, options: LOG_FLAGS }).values;
  } catch (e) {
    out(`${(e as Error).message}\n${usage}`);
    return 2;
  }
  const log = commandLogger(values, out);
  if (typeof log === "number") return log;
  let services: Awaited<ReturnType<typeof startSampleServices>>;
  try {
    services = await startSampleServices(PORTS, EDGE, TRY);
  } catch (e) {
    log.error("the demo did not start", { error: (e as Error).message });
    return 1;
  }
  const h = await startFromFile(DEMO_CONFIG, log, out);
  if (typeof h === "number") {
    await services.close();
    return h;
  }
  out(TRY);
  const code = await h.stopped;
  await services.close();
  return code;
}
