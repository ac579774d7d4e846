// A data-plane worker thread: loads the same config text as the control thread, serves
// the config's uws servers on the ports the control thread chose, binds names through
// it, reports its counts and metrics every second, sends the control thread the requests
// the open taps match, and drains when told to.

import { type MessagePort, parentPort } from "node:worker_threads";
import { systemClock } from "../clock.js";
import { createForwardingLogger } from "../log.js";
import { Runtime } from "../runtime.js";
import { closeAllUwsApps } from "../server/uws-engine.js";
import { loadLintelConfig } from "../setup.js";
import { SharedArena } from "../shared-arena.js";
import { threadMetrics } from "../telemetry/index.js";
import type { FromWorker, ToWorker, WorkerInit } from "./protocol.js";
import { RemoteAcmeAnswers, usesAcme } from "./remote-acme.js";
import { RemoteCertificates } from "./remote-certificates.js";
import { RemoteBindings } from "./remote-interpreter.js";
import { RemoteKube } from "./remote-kube.js";
import { TreeDecoder } from "./tree-codec.js";

/** How often a worker reports its counts and metrics: how late the admin server's figures may be. */
const STATS_INTERVAL_MS = 1000;

if (!parentPort) throw new Error("worker-main runs as a worker thread of lintel");
const port: MessagePort = parentPort;
const post = (m: FromWorker) => port.postMessage(m);

let ending = false;
/**
 * Ends this thread. uws must be closed first, or its handles abort the whole process;
 * nothing else (Node's own sockets, timers) needs closing.
 */
function end(code: number): void {
  if (ending) return;
  ending = true;
  void closeAllUwsApps().then(() => process.exit(code));
}

// A bug that escapes (a plugin's, say) ends this worker only: the control thread starts
// another.
process.on("uncaughtException", (e) => {
  if (ending) return;
  post({
    type: "log",
    level: "error",
    msg: "worker crashed",
    fields: { error: e.stack ?? e.message },
  });
  end(1);
});

port.once("message", (init: WorkerInit) => {
  void serve(init).catch((e: Error) => {
    post({ type: "failed", error: e.message });
    end(1);
  });
});

async function serve(init: WorkerInit): Promise<void> {
  const log = createForwardingLogger((level, msg, fields) =>
    post({ type: "log", level, msg, fields }),
  );
  const decoder = new TreeDecoder();
  const remote = new RemoteBindings(decoder, post);
  const kube = new RemoteKube(post, systemClock);
  const acme = new RemoteAcmeAnswers(post);
  const certificates = new Map(
    init.certificates.map((c) => [c.server, new RemoteCertificates(c)] as const),
  );
  let runtime: Runtime | undefined;
  let report = () => {};
  // A telemeter's state is a plugin's: it may throw, or not survive structured cloning.
  const answerTelemeterState = (id: number, telemeter: number) => {
    try {
      post({ type: "telemeter-state", id, state: runtime?.telemeters?.threadState(telemeter) });
    } catch (e) {
      post({ type: "telemeter-state", id, error: `the telemeter failed: ${(e as Error).message}` });
    }
  };
  port.on("message", (m: ToWorker) => {
    switch (m.type) {
      case "bound":
        remote.bound(m.sub, m.state);
        break;
      case "addr":
        decoder.setAddr(m.addr, m.value);
        break;
      case "addr-drop":
        decoder.dropAddr(m.addr);
        break;
      case "certificates":
        certificates.get(m.update.server)?.update(m.update);
        break;
      case "kube-items":
        kube.items(m);
        break;
      case "acme-http-answer":
        acme.answered(m.id, m.answer);
        break;
      case "clients":
        post({ type: "clients", id: m.id, routers: runtime?.clientsView() ?? [] });
        break;
      case "telemeter-state":
        answerTelemeterState(m.id, m.telemeter);
        break;
      case "taps":
        runtime?.tap.set(m.filters);
        break;
      case "shutdown":
        void (runtime?.shutdown(m.graceMs) ?? Promise.resolve()).finally(() => {
          // The last figures, so the totals include the requests drained.
          report();
          post({ type: "stopped" });
          end(0);
        });
        break;
      case "stop":
        end(0);
        break;
      case "init":
        break;
    }
  });

  const loaded = await loadLintelConfig(init.configFile, { text: init.configText });
  if (!loaded.ok) {
    throw new Error(
      `the config no longer loads: ${loaded.errors.map((e) => e.message).join("; ")}`,
    );
  }
  runtime = await Runtime.start(loaded.config, {
    log,
    worker: {
      interpreters: (router) => remote.interpreter(router),
      kube: (ref) => kube.api(ref),
      kubeSynced: (timeoutMs) => kube.waitForSync(timeoutMs),
      acmeHttp: usesAcme(loaded.config) ? (token) => acme.answer(token) : undefined,
      ports: init.ports,
      certificates: (server) => certificates.get(server),
      arena: new SharedArena(init.arena),
    },
  });
  const rt = runtime;
  rt.tap.connect((batches) => post({ type: "tap", batches }));
  // This thread's event loop, GC and heap, in each report (the thread ends with the process).
  threadMetrics(rt.metrics, `worker-${init.index + 1}`);
  report = () =>
    post({
      type: "stats",
      stats: {
        inflight: rt.routers.reduce((n, r) => n + r.inflight, 0),
        requests: rt.routers.reduce((n, r) => n + r.handled, 0),
      },
      metrics: rt.metrics.snapshot(),
    });
  setInterval(report, STATS_INTERVAL_MS).unref();
  post({ type: "ready" });
}
