// The admin server (default 127.0.0.1:9990): liveness and readiness for load balancers
// and Kubernetes, the delegator API Linkerd's dashboard used, the running config,
// metrics (rendered by ./metrics.ts), clients and their endpoints (./clients.ts), the
// telemeters' pages (../telemeters/), graceful shutdown, and the admin UI (./ui/, served
// by ./ui-assets.ts). Who may ask is checked first (./access.ts). Its own paths are listed
// in ./paths.ts.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import { Dtab, NameParseError, readDtab, readPath } from "../naming/index.js";
import type { NamerInstance } from "../plugins/types.js";
import { delegationJson } from "../routing/delegate-json.js";
import { explain } from "../routing/explain.js";
import type { RouterNaming } from "../routing/naming-setup.js";
import type { AdminRouteHandler } from "../telemeters/telemeters.js";
import type { MetricsSnapshot } from "../telemetry/index.js";
import { crossOriginRefusal, type Refusal, TokenCheck } from "./access.js";
import { metricsJson } from "./metrics.js";
import { OPEN_PATHS, PROMETHEUS_PATH, UI_INDEX_PATH } from "./paths.js";
import { PrometheusExposition } from "./prometheus/exposition.js";
import { UiAssets } from "./ui-assets.js";

export interface AdminContext {
  readonly log: Logger;
  readonly routers: ReadonlyMap<string, RouterNaming>;
  /** The config as written (before environment substitution, so secrets stay out). */
  readonly configJson: () => unknown;
  /** 200 from /admin/ready only when this says so. */
  readonly isReady: () => boolean;
  readonly shutdown: () => void;
  /** Every thread's metrics, merged (the workers' as of their last report). */
  readonly metrics: () => MetricsSnapshot;
  /** The configured namers by prefix (without the leading /), for /namer_state. */
  readonly namers: ReadonlyMap<string, NamerInstance>;
  /** Each Kubernetes API endpoint in use and its watches. */
  readonly kubernetes: () => unknown;
  /** Every certificate served, and the ACME names' state. */
  readonly certificates: () => unknown;
  /** Every client's balancer and endpoints, per thread serving requests (workers asked, bounded). */
  readonly clients: () => Promise<unknown>;
  /** The telemeters' pages by path (io.l5d.prometheus may take over the Prometheus one's). */
  readonly routes?: ReadonlyMap<string, AdminRouteHandler>;
  /** The bearer token every path but the open ones needs (admin.token or admin.tokenEnv). */
  readonly token?: string | undefined;
  /** Where the built UI is; by default the build's dist/admin-ui. */
  readonly uiDir?: string;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/** How long /delegator.json waits for namers before answering with what it has. */
const DELEGATE_TIMEOUT_MS = 2000;
/** Largest POST body the admin server reads. */
const MAX_BODY_BYTES = 64 * 1024;

function send(
  res: ServerResponse,
  status: number,
  body: string,
  type = "text/plain; charset=utf-8",
): void {
  res.writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}

const sendJson = (res: ServerResponse, status: number, value: unknown) =>
  send(res, status, `${JSON.stringify(value, null, 2)}\n`, "application/json");

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function delegator(
  ctx: AdminContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  let namespace: string | null;
  let dtabText: string | null;
  let pathText: string | null;
  if (req.method === "POST") {
    let body: { namespace?: unknown; dtab?: unknown; path?: unknown };
    try {
      body = JSON.parse(await readBody(req));
    } catch (e) {
      return send(res, 400, `malformed delegation request: ${(e as Error).message}\n`);
    }
    namespace = typeof body.namespace === "string" ? body.namespace : null;
    dtabText = typeof body.dtab === "string" ? body.dtab : null;
    pathText = typeof body.path === "string" ? body.path : null;
  } else if (req.method === "GET") {
    namespace = url.searchParams.get("namespace");
    dtabText = url.searchParams.get("dtab");
    pathText = url.searchParams.get("path");
  } else {
    return send(res, 405, "use GET or POST\n");
  }
  const labels = [...ctx.routers.keys()];
  const label = namespace ?? (labels.length === 1 ? labels[0]! : null);
  if (label === null)
    return send(res, 400, `namespace (a router label) is required: ${labels.join(", ")}\n`);
  const router = ctx.routers.get(label);
  if (!router)
    return send(res, 404, `no router labelled "${label}"; routers: ${labels.join(", ")}\n`);
  if (!pathText) return send(res, 400, "path is required\n");
  let path: ReturnType<typeof readPath>;
  let local: Dtab;
  try {
    path = readPath(pathText);
  } catch (e) {
    return send(res, 400, `Invalid path: ${e instanceof NameParseError ? e.message : String(e)}\n`);
  }
  try {
    local = dtabText ? readDtab(dtabText) : Dtab.empty;
  } catch (e) {
    return send(res, 400, `Invalid dtab: ${e instanceof NameParseError ? e.message : String(e)}\n`);
  }
  const e = await explain(router.interpreter, local, path, DELEGATE_TIMEOUT_MS);
  sendJson(res, 200, delegationJson(e, path));
}

/** What the UI lays itself out by: the routers, the namers with a state page, the telemeters' pages. */
function uiIndex(ctx: AdminContext) {
  return {
    routers: [...ctx.routers.values()].map((r) => ({
      label: r.label,
      dstPrefix: r.dstPrefix.show,
    })),
    namers: [...ctx.namers]
      .filter(([, n]) => n.state)
      .map(([prefix]) => ({ prefix, state: `/namer_state/${encodeURIComponent(prefix)}.json` })),
    pages: [...(ctx.routes?.keys() ?? [])],
  };
}

function refuse(res: ServerResponse, r: Refusal): void {
  res.writeHead(r.status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(r.message),
    "cache-control": "no-store",
    ...r.headers,
  });
  res.end(r.message);
}

/** Linkerd's /namer_state/<prefix>.json: what a namer watches and knows. */
function namerState(ctx: AdminContext, res: ServerResponse, pathname: string): void {
  const prefix = decodeURIComponent(pathname.slice("/namer_state/".length)).replace(/\.json$/, "");
  const namer = ctx.namers.get(prefix);
  if (!namer?.state) {
    const known = [...ctx.namers].filter(([, n]) => n.state).map(([p]) => `/namer_state/${p}.json`);
    send(res, 404, `no namer state at ${pathname}; known: ${known.join(", ") || "none"}\n`);
    return;
  }
  sendJson(res, 200, namer.state());
}

export function startAdminServer(
  ctx: AdminContext,
  ip: string,
  port: number,
): Promise<AdminServer> {
  const prometheus = new PrometheusExposition(ctx.metrics);
  const ui = new UiAssets(ctx.uiDir);
  const tokenCheck = ctx.token === undefined ? undefined : new TokenCheck(ctx.token);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const route = `${req.method} ${url.pathname}`;
    const handle = async () => {
      const crossOrigin = crossOriginRefusal(req);
      if (crossOrigin) return refuse(res, crossOrigin);
      // The UI's page, script and stylesheet hold no data: they load without the token
      // and ask for it.
      const page = ui.answer(req.method ?? "GET", url.pathname, req.headers["if-none-match"]);
      if (page) {
        res.writeHead(page.status, page.headers);
        return void res.end(page.body);
      }
      const unauthorized = OPEN_PATHS.has(url.pathname) ? undefined : tokenCheck?.refusal(req);
      if (unauthorized) return refuse(res, unauthorized);
      const telemeterRoute = ctx.routes?.get(url.pathname);
      if (telemeterRoute) {
        const a = await telemeterRoute(req.method ?? "GET", url, req.headers);
        return send(res, a.status ?? 200, a.body, a.contentType);
      }
      switch (url.pathname) {
        case "/admin/ping":
          return send(res, 200, "pong");
        case "/admin/ready":
          return ctx.isReady() ? send(res, 200, "ready\n") : send(res, 503, "not ready\n");
        case "/config.json":
          return sendJson(res, 200, ctx.configJson());
        case "/delegator.json":
          return delegator(ctx, req, res, url);
        case "/admin/metrics.json": {
          const m = metricsJson(ctx.metrics());
          const pretty = url.searchParams.has("pretty");
          return send(
            res,
            200,
            `${pretty ? JSON.stringify(m, null, 2) : JSON.stringify(m)}\n`,
            "application/json",
          );
        }
        case "/admin/kubernetes.json":
          return sendJson(res, 200, ctx.kubernetes());
        case "/admin/certificates.json":
          return sendJson(res, 200, ctx.certificates());
        case "/admin/clients.json":
          return sendJson(res, 200, await ctx.clients());
        case UI_INDEX_PATH:
          return sendJson(res, 200, uiIndex(ctx));
        case PROMETHEUS_PATH: {
          const p = await prometheus.render(req.headers.accept, url.searchParams.get("format"));
          return send(res, 200, p.body, p.contentType);
        }
        case "/admin/shutdown":
          if (req.method !== "POST") return send(res, 405, "use POST\n");
          send(res, 202, "shutting down\n");
          ctx.shutdown();
          return;
        default:
          if (url.pathname.startsWith("/namer_state/")) return namerState(ctx, res, url.pathname);
          return send(res, 404, `not found: ${url.pathname}\n`);
      }
    };
    handle().catch((e: Error) => {
      ctx.log.error("admin request failed", { route, error: e.message });
      if (!res.headersSent) send(res, 500, `${e.message}\n`);
      else res.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, ip, () => {
      server.off("error", reject);
      const a = server.address();
      resolve({
        port: typeof a === "object" && a ? a.port : port,
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
