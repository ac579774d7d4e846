// The connection layer to the Kubernetes API against real loopback servers: a kubectl
// proxy, in-cluster mode (token and CA rotation), kubeconfigs (tokens, client
// certificates, inline data, relative paths, exec plugins), timeouts and aborts.

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  type ApiConnection,
  type ApiEndpoint,
  endpointKey,
  KubeConfigError,
  KubeRequestError,
  openConnection,
} from "../../gateway/k8s/connection.js";
import { runExecPlugin } from "../../gateway/k8s/exec-credential.js";
import type { Logger } from "../../gateway/log.js";
import { type Issued, TestCa } from "../tls/test-ca.js";

let ca: TestCa;
let otherCa: TestCa;
let serverCert: Issued;
let otherServerCert: Issued;
let clientCert: Issued;

beforeAll(async () => {
  ca = await TestCa.root("Lintel Test Cluster CA");
  otherCa = await TestCa.root("Some Other CA");
  serverCert = await ca.leaf({ dns: ["localhost"] });
  otherServerCert = await otherCa.leaf({ dns: ["localhost"] });
  clientCert = await ca.leaf({ client: true, cn: "system:serviceaccount:edge:lintel" });
});

/** Undone after each test, last first, even when the test fails. */
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "lintel-k8s-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(endpoint: ApiEndpoint, opts?: Parameters<typeof openConnection>[1]): ApiConnection {
  const conn = openConnection(endpoint, opts);
  cleanups.push(() => conn.close());
  return conn;
}

/** What a test server saw of one request. */
interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The CN of the client certificate, when one was presented. */
  readonly clientCn: string | undefined;
}

interface TestServer {
  readonly port: number;
  readonly seen: Seen[];
  readonly server: http.Server | https.Server;
}

/**
 * A loopback API server (https when `tls` is given) that records each request and answers
 * `respond`'s status (200 by default) with a small JSON body.
 */
async function serve(
  opts: { tls?: https.ServerOptions; respond?: (seen: Seen) => number; host?: string } = {},
): Promise<TestServer> {
  const seen: Seen[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      const peer = opts.tls ? (req.socket as TLSSocket).getPeerCertificate() : undefined;
      const s: Seen = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body,
        clientCn: peer?.subject?.CN as string | undefined,
      };
      seen.push(s);
      res.writeHead(opts.respond?.(s) ?? 200, { "content-type": "application/json" });
      res.end('{"kind":"Status"}');
    });
  };
  const server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler);
  await listen(server, opts.host);
  return { port: (server.address() as AddressInfo).port, seen, server };
}

async function listen(server: http.Server, host = "127.0.0.1"): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
}

const tlsWith = (cert: Issued): https.ServerOptions => ({ cert: cert.certPem, key: cert.keyPem() });

/** Requires a client certificate signed by the test CA. */
const mtls = (): https.ServerOptions => ({
  ...tlsWith(serverCert),
  ca: ca.certPem,
  requestCert: true,
  rejectUnauthorized: true,
});

async function readBody(res: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of res) text += chunk;
  return text;
}

/** GETs `path` and reads the whole response. */
async function get(conn: ApiConnection, path = "/api/v1/namespaces"): Promise<number> {
  const res = await conn.request({ method: "GET", path });
  await readBody(res);
  return res.statusCode!;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Writes a kubeconfig with one context `ctx` (plus `other`) for `cluster` and `user`. */
function writeKubeconfig(
  path: string,
  cluster: Record<string, unknown>,
  user: Record<string, unknown> | undefined,
  extra: Record<string, unknown> = {},
): string {
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "ctx",
    clusters: [{ name: "c", cluster }],
    users: user ? [{ name: "u", user }] : [],
    contexts: [
      { name: "ctx", context: { cluster: "c", ...(user ? { user: "u" } : {}), namespace: "edge" } },
      { name: "other", context: { cluster: "c" } },
    ],
    ...extra,
  };
  writeFileSync(path, stringify(doc));
  return path;
}

describe("endpointKey", () => {
  it("is the same for the same endpoint and differs otherwise", () => {
    const proxy = { mode: "proxy", host: "localhost", port: 8001 } as const;
    expect(endpointKey(proxy)).toBe(endpointKey({ ...proxy }));
    expect(endpointKey(proxy)).not.toBe(endpointKey({ ...proxy, port: 8002 }));
    const kc = { mode: "kubeconfig", path: "/etc/kube/config" } as const;
    expect(endpointKey(kc)).toBe(endpointKey({ ...kc, path: "/etc/kube/../kube/config" }));
    expect(endpointKey(kc)).not.toBe(endpointKey({ ...kc, context: "prod" }));
    expect(endpointKey({ mode: "inCluster", tokenFile: "/t", caFile: "/c" })).not.toBe(
      endpointKey({ mode: "inCluster", tokenFile: "/t2", caFile: "/c" }),
    );
  });
});

describe("proxy mode", () => {
  it("reaches a plain HTTP server without credentials", async () => {
    const api = await serve();
    const conn = open({ mode: "proxy", host: "127.0.0.1", port: api.port });
    expect(conn.server).toBe(`http://127.0.0.1:${api.port}`);
    expect(conn.auth).toBe("none");
    const res = await conn.request({
      method: "PATCH",
      path: "/api/v1/namespaces/edge/services/web/status",
      body: '{"status":{}}',
      contentType: "application/merge-patch+json",
    });
    expect(res.statusCode).toBe(200);
    expect(await readBody(res)).toBe('{"kind":"Status"}');
    const [seen] = api.seen;
    expect(seen).toMatchObject({
      method: "PATCH",
      url: "/api/v1/namespaces/edge/services/web/status",
      body: '{"status":{}}',
    });
    expect(seen!.headers.accept).toBe("application/json");
    expect(seen!.headers["content-type"]).toBe("application/merge-patch+json");
    expect(seen!.headers["user-agent"]).toMatch(/^lintel\/\d+\.\d+\.\d+/);
    expect(seen!.headers.authorization).toBeUndefined();
  });

  it("reuses a kept-alive socket for the next request", async () => {
    const api = await serve();
    const sockets = new Set<unknown>();
    api.server.on("connection", (s) => sockets.add(s));
    const conn = open({ mode: "proxy", host: "127.0.0.1", port: api.port });
    await get(conn);
    await get(conn);
    expect(api.seen).toHaveLength(2);
    expect(sockets.size).toBe(1);
  });

  it("brackets an IPv6 host", async (ctx) => {
    expect(openConnection({ mode: "proxy", host: "::1", port: 8001 }).server).toBe(
      "http://[::1]:8001",
    );
    let api: TestServer;
    try {
      api = await serve({ host: "::1" });
    } catch {
      ctx.skip("no IPv6 loopback here");
    }
    const conn = open({ mode: "proxy", host: "::1", port: api!.port });
    expect(await get(conn)).toBe(200);
  });

  it("rejects with the errno code when nothing listens", async () => {
    const api = await serve();
    const port = api.port;
    await cleanups.pop()!(); // close the server now
    const conn = open({ mode: "proxy", host: "127.0.0.1", port });
    const err = await rejection(get(conn));
    expect(err).toBeInstanceOf(KubeRequestError);
    expect((err as KubeRequestError).code).toBe("ECONNREFUSED");
    expect(err.message).toContain(`GET http://127.0.0.1:${port}/api/v1/namespaces`);
  });
});

describe("in-cluster mode", () => {
  async function inCluster(serverTls = tlsWith(serverCert)) {
    const api = await serve({ tls: serverTls });
    const dir = tempDir();
    const tokenFile = join(dir, "token");
    const caFile = join(dir, "ca.crt");
    writeFileSync(tokenFile, "first-token\n");
    writeFileSync(caFile, ca.certPem);
    const env = { KUBERNETES_SERVICE_HOST: "localhost", KUBERNETES_SERVICE_PORT: String(api.port) };
    const conn = open({ mode: "inCluster", tokenFile, caFile }, { env });
    return { api, conn, tokenFile, caFile };
  }

  it("sends the service account token to a server the cluster CA vouches for", async () => {
    const { api, conn, tokenFile } = await inCluster();
    expect(conn.server).toBe(`https://localhost:${api.port}`);
    expect(conn.auth).toBe(`service account token ${tokenFile}`);
    expect(await get(conn)).toBe(200);
    expect(api.seen[0]!.headers.authorization).toBe("Bearer first-token");
  });

  it("sends the new token once the kubelet rewrites the file", async () => {
    const { api, conn, tokenFile } = await inCluster();
    await get(conn);
    writeFileSync(tokenFile, "second-token-rotated\n");
    await get(conn);
    expect(api.seen.map((s) => s.headers.authorization)).toEqual([
      "Bearer first-token",
      "Bearer second-token-rotated",
    ]);
  });

  it("trusts a rotated CA once the file changes", async () => {
    const { api, conn, caFile } = await inCluster();
    await get(conn);
    (api.server as https.Server).setSecureContext(tlsWith(otherServerCert));
    api.server.closeAllConnections();
    writeFileSync(caFile, otherCa.certPem);
    expect(await get(conn)).toBe(200);
  });

  it("refuses a server certificate from another CA, saying which CA it trusts", async () => {
    const { conn, caFile } = await inCluster(tlsWith(otherServerCert));
    const err = await rejection(get(conn));
    expect(err).toBeInstanceOf(KubeRequestError);
    expect((err as KubeRequestError).code).toMatch(/CERT|VERIFY/);
    expect(err.message).toContain(`not signed by the CA in ${caFile}`);
  });

  it("says lintel is not in a pod when the service env is missing", () => {
    const err = thrown(() =>
      openConnection({ mode: "inCluster", tokenFile: "/t", caFile: "/c" }, { env: {} }),
    );
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toMatch(/KUBERNETES_SERVICE_HOST.*not running in a pod.*kubernetes\.mode/);
  });

  it("names a missing token file", () => {
    const dir = tempDir();
    const env = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };
    const tokenFile = join(dir, "token");
    const err = thrown(() =>
      openConnection({ mode: "inCluster", tokenFile, caFile: join(dir, "ca.crt") }, { env }),
    );
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toBe(`in-cluster mode: service account token: no such file ${tokenFile}`);
  });
});

describe("kubeconfig mode", () => {
  it("sends a token, trusting the certificate-authority file", async () => {
    const api = await serve({ tls: tlsWith(serverCert) });
    const dir = tempDir();
    writeFileSync(join(dir, "ca.crt"), ca.certPem);
    const path = writeKubeconfig(
      join(dir, "config"),
      { server: `https://localhost:${api.port}`, "certificate-authority": join(dir, "ca.crt") },
      { token: "kubeconfig-token" },
    );
    const conn = open({ mode: "kubeconfig", path });
    expect(conn.auth).toBe("bearer token");
    expect(conn.server).toBe(`https://localhost:${api.port}`);
    expect(await get(conn)).toBe(200);
    expect(api.seen[0]!.headers.authorization).toBe("Bearer kubeconfig-token");
  });

  it("presents a client certificate to a server that requires one", async () => {
    const api = await serve({ tls: mtls() });
    const dir = tempDir();
    writeFileSync(join(dir, "ca.crt"), ca.certPem);
    writeFileSync(join(dir, "client.crt"), clientCert.certPem);
    writeFileSync(join(dir, "client.key"), clientCert.keyPem());
    const path = writeKubeconfig(
      join(dir, "config"),
      { server: `https://localhost:${api.port}`, "certificate-authority": join(dir, "ca.crt") },
      { "client-certificate": join(dir, "client.crt"), "client-key": join(dir, "client.key") },
    );
    const conn = open({ mode: "kubeconfig", path });
    expect(conn.auth).toBe("client certificate");
    expect(await get(conn)).toBe(200);
    expect(api.seen[0]!.clientCn).toBe("system:serviceaccount:edge:lintel");
    expect(api.seen[0]!.headers.authorization).toBeUndefined();
  });

  it("reads inline -data fields", async () => {
    const api = await serve({ tls: mtls() });
    const path = writeKubeconfig(
      join(tempDir(), "config"),
      {
        server: `https://localhost:${api.port}`,
        "certificate-authority-data": b64(ca.certPem),
      },
      {
        "client-certificate-data": b64(clientCert.certPem),
        "client-key-data": b64(clientCert.keyPem("sec1")),
      },
    );
    const conn = open({ mode: "kubeconfig", path });
    expect(await get(conn)).toBe(200);
    expect(api.seen[0]!.clientCn).toBe("system:serviceaccount:edge:lintel");
  });

  it("resolves relative paths against the kubeconfig's folder", async () => {
    const api = await serve({ tls: mtls() });
    const dir = tempDir();
    mkdirSync(join(dir, "pki"));
    mkdirSync(join(dir, "kube"));
    writeFileSync(join(dir, "pki/ca.crt"), ca.certPem);
    writeFileSync(join(dir, "pki/client.crt"), clientCert.certPem);
    writeFileSync(join(dir, "pki/client.key"), clientCert.keyPem());
    writeFileSync(join(dir, "kube/token"), "token-from-file\n");
    const path = writeKubeconfig(
      join(dir, "kube/config"),
      { server: `https://localhost:${api.port}`, "certificate-authority": "../pki/ca.crt" },
      {
        "client-certificate": "../pki/client.crt",
        "client-key": "../pki/client.key",
        tokenFile: "token",
      },
    );
    const conn = open({ mode: "kubeconfig", path });
    expect(conn.auth).toBe(`client certificate + bearer token file ${join(dir, "kube/token")}`);
    expect(await get(conn)).toBe(200);
    expect(api.seen[0]!.clientCn).toBe("system:serviceaccount:edge:lintel");
    expect(api.seen[0]!.headers.authorization).toBe("Bearer token-from-file");
  });

  it("skips verification with insecure-skip-tls-verify, and only then", async () => {
    const api = await serve({ tls: tlsWith(otherServerCert) });
    const dir = tempDir();
    const insecure = writeKubeconfig(
      join(dir, "insecure"),
      { server: `https://localhost:${api.port}`, "insecure-skip-tls-verify": true },
      { username: "admin", password: "s3cret" },
    );
    const warnings: string[] = [];
    const conn = open(
      { mode: "kubeconfig", path: insecure },
      { log: loggerOfWarnings((m) => warnings.push(m)) },
    );
    expect(conn.auth).toBe("basic auth");
    expect(await get(conn)).toBe(200);
    expect(api.seen[0]!.headers.authorization).toBe(`Basic ${b64("admin:s3cret")}`);
    expect(warnings.join()).toContain("insecure-skip-tls-verify");

    const verified = writeKubeconfig(
      join(dir, "verified"),
      { server: `https://localhost:${api.port}`, "certificate-authority-data": b64(ca.certPem) },
      undefined,
    );
    const err = await rejection(get(open({ mode: "kubeconfig", path: verified })));
    expect(err.message).toContain("not signed by the kubeconfig's certificate-authority");
  });

  it("checks the certificate against tls-server-name", async () => {
    const api = await serve({ tls: tlsWith(serverCert) });
    const path = writeKubeconfig(
      join(tempDir(), "config"),
      {
        server: `https://127.0.0.1:${api.port}`,
        "certificate-authority-data": b64(ca.certPem),
        "tls-server-name": "localhost",
      },
      undefined,
    );
    expect(await get(open({ mode: "kubeconfig", path }))).toBe(200);
  });

  it("keeps the server URL's path as a prefix", async () => {
    const api = await serve();
    const path = writeKubeconfig(
      join(tempDir(), "config"),
      { server: `http://127.0.0.1:${api.port}/k8s/clusters/c-1/` },
      undefined,
    );
    const conn = open({ mode: "kubeconfig", path });
    expect(conn.server).toBe(`http://127.0.0.1:${api.port}/k8s/clusters/c-1`);
    await get(conn, "/api/v1/pods?watch=1");
    expect(api.seen[0]!.url).toBe("/k8s/clusters/c-1/api/v1/pods?watch=1");
  });

  it("names a missing context and the ones there are", () => {
    const path = writeKubeconfig(join(tempDir(), "config"), { server: "https://k8s:6443" }, {});
    const err = thrown(() => openConnection({ mode: "kubeconfig", path, context: "prod" }));
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toBe(`${path}: no context named "prod" (it has: ctx, other)`);
  });

  it("gives the line of bad YAML without quoting the file", () => {
    const path = join(tempDir(), "config");
    writeFileSync(path, "users:\n- name: u\n  user: {token: hunter2\nclusters: []\n");
    const err = thrown(() => openConnection({ mode: "kubeconfig", path }));
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toMatch(
      new RegExp(`^${path}: not valid YAML: .* at line \\d+, column \\d+$`),
    );
    expect(err.message).not.toContain("hunter2");
  });

  it("names a missing kubeconfig file", () => {
    const path = join(tempDir(), "nope");
    const err = thrown(() => openConnection({ mode: "kubeconfig", path }));
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toBe(`kubeconfig ${path}: no such file ${path}`);
  });
});

/** A logger that hands warnings to `onWarn` and drops the rest. */
function loggerOfWarnings(onWarn: (msg: string) => void): Logger {
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: (m) => onWarn(m),
    error: () => {},
    child: () => log,
  };
  return log;
}

describe("exec credential plugins", () => {
  /**
   * Writes an executable plugin that counts its runs in `count`, saves KUBERNETES_EXEC_INFO
   * in `info`, and prints `exec-token-<run>` expiring at $EXPIRES (if set).
   */
  function writePlugin(dir: string, body?: string): string {
    const path = join(dir, "plugin");
    writeFileSync(
      path,
      `#!/usr/bin/env node
const fs = require("node:fs");
const path = require("node:path");
const here = path.dirname(process.argv[1]);
const countFile = path.join(here, "count");
const n = (fs.existsSync(countFile) ? Number(fs.readFileSync(countFile, "utf8")) : 0) + 1;
fs.writeFileSync(countFile, String(n));
fs.writeFileSync(path.join(here, "info"), process.env.KUBERNETES_EXEC_INFO ?? "");
${
  body ??
  `const status = { token: "exec-token-" + n };
if (process.env.EXPIRES) status.expirationTimestamp = process.env.EXPIRES;
process.stdout.write(JSON.stringify({
  apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status,
}));`
}
`,
    );
    chmodSync(path, 0o755);
    return path;
  }

  const runs = (dir: string) => Number(readFileSync(join(dir, "count"), "utf8"));

  function execConfig(command: string, extra: Record<string, unknown> = {}) {
    return {
      apiVersion: "client.authentication.k8s.io/v1",
      command,
      args: ["--cluster", "edge"],
      env: [{ name: "EXPIRES", value: "2030-01-01T00:10:00Z" }],
      interactiveMode: "Never",
      installHint: "install it with: npm i -g some-plugin",
      ...extra,
    };
  }

  it("runs once, caches until shortly before expiry, and runs again after a 401", async () => {
    let status = 200;
    const api = await serve({ tls: tlsWith(serverCert), respond: () => status });
    const dir = tempDir();
    writePlugin(dir);
    const path = writeKubeconfig(
      join(dir, "config"),
      { server: `https://localhost:${api.port}`, "certificate-authority-data": b64(ca.certPem) },
      { exec: execConfig("./plugin") },
    );
    let now = Date.parse("2030-01-01T00:00:00Z");
    const conn = open({ mode: "kubeconfig", path }, { env: process.env, now: () => now });
    expect(conn.auth).toBe("exec: plugin");

    await Promise.all([get(conn), get(conn)]);
    await get(conn);
    expect(runs(dir)).toBe(1);
    expect(JSON.parse(readFileSync(join(dir, "info"), "utf8"))).toEqual({
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      spec: { interactive: false },
    });

    now = Date.parse("2030-01-01T00:09:29Z");
    await get(conn);
    expect(runs(dir)).toBe(1);
    now = Date.parse("2030-01-01T00:09:31Z"); // within 30 s of expiry
    await get(conn);
    expect(runs(dir)).toBe(2);

    status = 401;
    expect(await get(conn)).toBe(401);
    status = 200;
    await get(conn);
    expect(runs(dir)).toBe(3);
    expect(api.seen.map((s) => s.headers.authorization)).toEqual([
      "Bearer exec-token-1",
      "Bearer exec-token-1",
      "Bearer exec-token-1",
      "Bearer exec-token-1",
      "Bearer exec-token-2",
      "Bearer exec-token-2",
      "Bearer exec-token-3",
    ]);
  });

  it("presents a client certificate the plugin prints", async () => {
    const api = await serve({ tls: mtls() });
    const dir = tempDir();
    const credential = {
      apiVersion: "client.authentication.k8s.io/v1beta1",
      kind: "ExecCredential",
      status: { clientCertificateData: clientCert.certPem, clientKeyData: clientCert.keyPem() },
    };
    writePlugin(dir, `process.stdout.write(${JSON.stringify(JSON.stringify(credential))});`);
    const path = writeKubeconfig(
      join(dir, "config"),
      {
        server: `https://localhost:${api.port}`,
        "certificate-authority-data": b64(ca.certPem),
        extensions: [{ name: "client.authentication.k8s.io/exec", extension: { audience: "x" } }],
      },
      {
        exec: execConfig(join(dir, "plugin"), {
          apiVersion: "client.authentication.k8s.io/v1beta1",
          provideClusterInfo: true,
        }),
      },
    );
    const conn = open({ mode: "kubeconfig", path }, { env: process.env });
    expect(await get(conn)).toBe(200);
    expect(api.seen[0]!.clientCn).toBe("system:serviceaccount:edge:lintel");
    const info = JSON.parse(readFileSync(join(dir, "info"), "utf8"));
    expect(info.spec.cluster).toEqual({
      server: `https://localhost:${api.port}`,
      "certificate-authority-data": b64(`${ca.certPem.trim()}`),
      config: { audience: "x" },
    });
  });

  it("reports a failing plugin with its stderr, and no secrets", async () => {
    const dir = tempDir();
    writePlugin(
      dir,
      `process.stdout.write("partial-secret"); console.error("error: no credentials for profile edge"); process.exit(3);`,
    );
    const path = writeKubeconfig(
      join(dir, "config"),
      { server: "https://localhost:1" },
      { exec: execConfig("./plugin") },
    );
    const err = await rejection(get(open({ mode: "kubeconfig", path }, { env: process.env })));
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toBe(
      `${path}: users[0].user.exec: \`${join(dir, "plugin")}\` exited with code 3; stderr: error: no credentials for profile edge`,
    );
  });

  it("says what is wrong with output that is not a credential, without quoting it", async () => {
    const dir = tempDir();
    writePlugin(dir, `process.stdout.write("token: very-secret");`);
    const path = writeKubeconfig(
      join(dir, "config"),
      { server: "https://localhost:1" },
      { exec: execConfig("./plugin") },
    );
    const err = await rejection(get(open({ mode: "kubeconfig", path }, { env: process.env })));
    expect(err.message).toMatch(/users\[0\]\.user\.exec: .* did not print JSON/);
    expect(err.message).not.toContain("very-secret");
  });

  it("names a missing command with the install hint", async () => {
    const path = writeKubeconfig(
      join(tempDir(), "config"),
      { server: "https://localhost:1" },
      { exec: execConfig("lintel-no-such-plugin") },
    );
    const err = await rejection(get(open({ mode: "kubeconfig", path }, { env: process.env })));
    expect(err.message).toBe(
      `${path}: users[0].user.exec: command not found: lintel-no-such-plugin (install it with: npm i -g some-plugin)`,
    );
  });

  it("times out a plugin that hangs, quoting its stderr", async () => {
    const dir = tempDir();
    const command = writePlugin(
      dir,
      `console.error("waiting for the browser login"); setTimeout(() => {}, 60_000);`,
    );
    const started = Date.now();
    const err = await rejection(
      runExecPlugin(
        {
          apiVersion: "client.authentication.k8s.io/v1",
          command,
          args: [],
          env: [],
          where: "kubeconfig: users[0].user.exec",
        },
        process.env,
        1000,
      ),
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(KubeConfigError);
    expect(err.message).toBe(
      `kubeconfig: users[0].user.exec: \`${command}\` did not finish in 1 s; stderr: waiting for the browser login`,
    );
  });
});

describe("requests", () => {
  /** A server that accepts requests and never answers them. */
  async function silentServer(): Promise<number> {
    const server = http.createServer(() => {});
    await listen(server);
    return (server.address() as AddressInfo).port;
  }

  it("rejects with code timeout when the head does not arrive in timeoutMs", async () => {
    const port = await silentServer();
    const conn = open({ mode: "proxy", host: "127.0.0.1", port });
    const started = Date.now();
    const err = await rejection(conn.request({ method: "GET", path: "/api", timeoutMs: 200 }));
    expect(err).toBeInstanceOf(KubeRequestError);
    expect((err as KubeRequestError).code).toBe("timeout");
    expect(err.message).toBe(`GET http://127.0.0.1:${port}/api: no response in 200 ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it("rejects with code aborted when the signal aborts before the head", async () => {
    const port = await silentServer();
    const conn = open({ mode: "proxy", host: "127.0.0.1", port });
    const abort = new AbortController();
    const pending = conn.request({ method: "GET", path: "/api", signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    const err = await rejection(pending);
    expect((err as KubeRequestError).code).toBe("aborted");

    const already = await rejection(
      conn.request({ method: "GET", path: "/api", signal: AbortSignal.abort() }),
    );
    expect((already as KubeRequestError).code).toBe("aborted");
  });

  it("ends a streaming response (a watch) when the signal aborts", async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"type":"ADDED","object":{}}\n');
    });
    await listen(server);
    const conn = open({
      mode: "proxy",
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
    });
    const abort = new AbortController();
    const res = await conn.request({
      method: "GET",
      path: "/api/v1/pods?watch=1",
      signal: abort.signal,
    });
    const first = await new Promise<string>((resolve) =>
      res.once("data", (c) => resolve(String(c))),
    );
    expect(first).toContain("ADDED");
    const closed = new Promise<Error | undefined>((resolve) => {
      let error: Error | undefined;
      res.on("error", (e) => {
        error = e;
      });
      res.on("close", () => resolve(error));
    });
    abort.abort();
    const err = await closed;
    expect((err as KubeRequestError).code).toBe("aborted");
  });
});
