// The shape of a lintel config: a Linkerd 1 config for the `http` protocol, key for key,
// with lintel's extensions in the same style. Defaults follow Linkerd 1.

import type { Registry } from "../plugins/registry.js";
import { acmeBlock } from "./acme-schema.js";
import { connectBlock, dnsBlock, egressBlock } from "./egress-schemas.js";
import { h2ServerSettingsFields, namesH2Settings } from "./h2-settings.js";
import { kubernetesBlock } from "./kubernetes-schema.js";
import { type PluginConfig, pluginSchema } from "./plugin-schema.js";
import { clientSchema, defaultKind, kinded, serviceSchema } from "./policy-schemas.js";
import {
  boolean,
  cidr,
  def,
  dtabString,
  filePath,
  host,
  type Infer,
  integer,
  isPlainObject,
  list,
  nonEmptyString,
  object,
  oneOf,
  oneOrList,
  opt,
  pathString,
  port,
  refine,
  req,
  type Schema,
  show,
  string,
} from "./schema.js";
import { didYouMean } from "./suggest.js";

const UNSUPPORTED_PROTOCOLS: Readonly<Record<string, string>> = {
  thrift: "lintel routes HTTP only; thrift routers are not supported",
  mux: "lintel routes HTTP only; mux routers are not supported",
  thriftmux: "lintel routes HTTP only; thriftmux routers are not supported",
};

/** `http`, or `h2`: HTTP/2 to the upstreams (listeners serve both wherever the engine can). */
function protocol(): Schema<"http" | "h2"> {
  const expected = 'a protocol ("http" or "h2")';
  return {
    expected,
    decode(v, path, cx) {
      if (v === "http" || v === "h2") return v;
      if (typeof v === "string" && UNSUPPORTED_PROTOCOLS[v]) {
        return cx.report(path, `protocol "${v}" is not supported: ${UNSUPPORTED_PROTOCOLS[v]}`);
      }
      const hint = typeof v === "string" ? didYouMean(v, ["http", "h2"]) : "";
      return cx.report(path, `expected ${expected}, got ${show(v)}${hint}`);
    },
  };
}

export const passphraseFields = {
  /** lintel: a file holding the key's passphrase. */
  passphraseFile: opt(filePath("a passphrase file")),
  /** lintel: an environment variable holding the key's passphrase. */
  passphraseEnv: opt(nonEmptyString("an environment variable name")),
};

/** The fields that name a `tls.certs` entry's kind when it gives no `kind`; else `files`. */
const CERT_KEYS = ["dir", "secret", "ingressSecrets"];

/**
 * An entry of `tls.certs`: a certificate source, `{kind, ...}`. The entries written
 * before sources were kinds leave `kind` out: `{dir}`, `{secret}`, `{ingressSecrets}`
 * name theirs by that field, and a certificate and key are `files`.
 */
function certEntry(registry: Registry): Schema<PluginConfig<"certSource">> {
  const source = pluginSchema(registry, "certSource");
  const expected =
    "a certificate source: {certPath, keyPath}, {dir}, {secret}, {ingressSecrets} or {kind, ...}";
  return {
    expected,
    decode(v, path, cx) {
      if (!isPlainObject(v)) return cx.report(path, `expected ${expected}, got ${show(v)}`);
      if ("kind" in v) return source.decode(v, path, cx);
      return source.decode({ kind: CERT_KEYS.find((k) => k in v) ?? "files", ...v }, path, cx);
    },
  };
}

const TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;

const serverTlsFields = (registry: Registry) =>
  object({
    certPath: opt(filePath("a certificate file")),
    keyPath: opt(filePath("a key file")),
    intermediateCertsPath: opt(filePath("a certificate chain file")),
    ...passphraseFields,
    caCertPath: opt(filePath("a CA certificate file")),
    requireClientAuth: def(boolean(), false),
    /** Enabled versions; lintel serves TLS 1.2 and 1.3 only. */
    protocols: opt(list(oneOf(TLS_VERSIONS), { minItems: 1 })),
    ciphers: opt(list(nonEmptyString("a cipher name"))),
    /** lintel: more certificates, served by SNI name (the names come from the certificates). */
    certs: def(list(certEntry(registry)), []),
    /** lintel: refuse the handshake when the client asks for a name no certificate has. */
    strictSni: def(boolean(), false),
    /** lintel: how often certificate files are checked for changes besides file-system events. */
    checkIntervalMs: def(integer({ min: 100 }), 5000),
    /** lintel: how many certificates' TLS contexts a net listener keeps (default 1000; least recently used go first). */
    contextCacheSize: opt(integer({ min: 1 })),
    /** lintel: certificates from an ACME CA (docs/tls.md). */
    acme: opt(acmeBlock(registry)),
  });

const serverTls = (registry: Registry) =>
  refine(serverTlsFields(registry), (t) => {
    if ((t.certPath === undefined) !== (t.keyPath === undefined)) {
      return "certPath and keyPath go together: give both or neither";
    }
    if (t.certPath === undefined && t.certs.length === 0 && t.acme === undefined)
      return "give a certificate: certPath and keyPath, certs, or acme";
    if (t.requireClientAuth && t.caCertPath === undefined)
      return "requireClientAuth needs caCertPath (the CA client certificates must chain to)";
    return undefined;
  });

const forwardedLabeler = kinded("forwarded header labeler", {
  ip: object({}),
  "ip:port": object({}),
  connectionRandom: object({}),
  requestRandom: object({}),
  router: object({}),
  static: object({ label: req(nonEmptyString()) }),
});

/** Linkerd's `addForwardedHeader: {by, for}`; `true` is lintel's shorthand for the defaults. */
function forwardedHeader() {
  const full = object({ by: opt(forwardedLabeler), for: opt(forwardedLabeler) });
  const schema: Schema<Infer<typeof full> | undefined> = {
    expected: full.expected,
    decode(v, path, cx) {
      if (v === false) return undefined;
      if (v === true) return { by: undefined, for: undefined };
      return full.decode(v, path, cx);
    },
  };
  return schema;
}

/** A server's `httpsRedirect` (and the `httpsRedirect` layer's fields). */
export const httpsRedirectBlock = object({
  port: def(port(), 443),
  status: def(oneOf(["301", "302", "307", "308"]), "308"),
});

const server = (registry: Registry) =>
  refine(
    object(
      {
        port: def(port(), 4140),
        ip: def(host(), "127.0.0.1"),
        /** lintel: the listener engine. net: lintel's own; uws: with the limits in docs/engines.md; node: an old name of net. */
        engine: def(oneOf(["net", "node", "uws"]), "net"),
        tls: opt(serverTls(registry)),
        maxConcurrentRequests: opt(integer({ min: 1 })),
        clearContext: def(boolean(), false),
        timeoutMs: opt(integer({ min: 1 })),
        addForwardedHeader: opt(forwardedHeader()),
        maxCallDepth: def(integer({ min: 1 }), 1000),
        /** lintel: set X-Forwarded-For/-Proto/-Host; by default on clearContext (edge) servers. */
        xForwardedFor: opt(boolean()),
        /** lintel: peers whose X-Forwarded-* and Forwarded headers are believed and extended. */
        trustedProxies: def(list(cidr()), []),
        /**
         * lintel: every connection starts with a PROXY protocol header: v2 (HAProxy's
         * send-proxy-v2), v1 (send-proxy) or any of the two.
         */
        proxyProtocol: opt(oneOf(["v1", "v2", "any"])),
        /** lintel: the only peers allowed to send it (the HAProxy addresses). */
        proxyProtocolFrom: def(list(cidr()), []),
        /** lintel: the time a client has to send its request head (slow clients are cut off); net engine. */
        headersTimeoutMs: opt(integer({ min: 100 })),
        /** lintel: the most connections open at once on this server; net engine. */
        maxConnections: opt(integer({ min: 1 })),
        /** lintel: the most connections one client address may have open at once; net engine. */
        maxConnectionsPerClient: opt(integer({ min: 1 })),
        /** lintel: answer every request with a redirect to HTTPS on this port. */
        httpsRedirect: opt(httpsRedirectBlock),
        /** lintel: accept CONNECT tunnels (https_proxy clients) under the router's egress policy; net engine. */
        connect: opt(connectBlock),
        /** lintel: serve HTTP/2 (ALPN h2 over TLS, prior knowledge in cleartext); net engine. */
        http2: def(boolean(), true),
        /** lintel: a CONNECT or Upgrade (WebSocket) tunnel with no bytes either way for this long is closed. */
        tunnelIdleTimeoutMs: def(integer({ min: 1000 }), 3_600_000),
        /** Linkerd's h2 server parameters: the SETTINGS of its HTTP/2 connections. */
        ...h2ServerSettingsFields,
        /** lintel: more layers of the server stack, after its checks and before admission (`{kind, ...}`). */
        layers: opt(
          list(pluginSchema(registry, "serverLayer"), { expected: "a list of server layers" }),
        ),
      },
      {
        unsupported: { announce: "service announcement is not supported" },
      },
    ),
    (s) => {
      if (namesH2Settings(s) && (s.engine === "uws" || !s.http2)) {
        return s.engine === "uws"
          ? "HTTP/2 settings need engine: net (uws does not speak HTTP/2)"
          : "HTTP/2 settings are set but http2 is false";
      }
      if (s.proxyProtocol && s.proxyProtocolFrom.length === 0) {
        return "proxyProtocol needs proxyProtocolFrom: the addresses allowed to send it (your HAProxy)";
      }
      if (!s.proxyProtocol && s.proxyProtocolFrom.length > 0)
        return "proxyProtocolFrom is set but proxyProtocol is not";
      if (s.engine === "uws" && s.headersTimeoutMs !== undefined) {
        return "headersTimeoutMs needs engine: net (uws cuts slow clients off after its own fixed ~10 s)";
      }
      if (s.engine === "uws" && s.maxConnections !== undefined) {
        return "maxConnections needs engine: net (uws gives no hook to count connections)";
      }
      if (s.engine === "uws" && s.maxConnectionsPerClient !== undefined) {
        return "maxConnectionsPerClient needs engine: net (uws gives no hook to count connections)";
      }
      if (s.connect && s.engine === "uws") {
        return "connect needs engine: net (uws does not accept CONNECT)";
      }
      if (s.proxyProtocol && s.proxyProtocol !== "v2" && s.engine === "uws") {
        return `proxyProtocol: ${s.proxyProtocol} needs engine: net (uws reads only PROXY v2)`;
      }
      if (s.proxyProtocol && s.tls && s.engine === "uws") {
        return "the uws engine cannot read a PROXY header before TLS; use engine: net for this server";
      }
      if (s.engine === "uws" && s.tls?.acme?.challenges?.includes("tls-alpn-01")) {
        return "tls-alpn-01 needs engine: net (uws cannot negotiate ALPN); use http-01 or dns-01 here";
      }
      if (s.engine === "uws" && s.tls?.acme?.onDemand) {
        return "on-demand TLS needs engine: net (uws cannot wait for a certificate during a handshake)";
      }
      return undefined;
    },
  );

const bindingCache = object({
  paths: def(integer({ min: 1 }), 1000),
  trees: def(integer({ min: 1 }), 1000),
  bounds: def(integer({ min: 1 }), 1000),
  clients: def(integer({ min: 1 }), 1000),
  idleTtlSecs: def(integer({ min: 1 }), 600),
});

/**
 * Linkerd's access log roll policy: `never`, its default, is what lintel does; any
 * rotation is named as unsupported.
 */
function neverRolled(): Schema<"never"> {
  return {
    expected: "never",
    decode(v, path, cx) {
      if (typeof v === "string" && v.toLowerCase() === "never") return "never";
      return cx.report(
        path,
        `not supported by lintel: access log rotation is left to the log shipper (logrotate with copytruncate); only never is taken, got ${show(v)}`,
      );
    },
  };
}

export function routerSchema(registry: Registry) {
  const fields = object(
    {
      protocol: req(protocol()),
      label: opt(nonEmptyString("a router label")),
      dstPrefix: def(pathString(), "/svc"),
      dtab: def(dtabString(), ""),
      identifier: def(oneOrList(pluginSchema(registry, "identifier")), {
        kind: "io.l5d.header.token",
      }),
      interpreter: def(pluginSchema(registry, "interpreter"), { kind: "default" }),
      bindingTimeoutMs: def(integer({ min: 1 }), 10_000),
      bindingCache: def(bindingCache, {}),
      servers: def(list(server(registry), { expected: "a list of servers", minItems: 1 }), [{}]),
      client: def(defaultKind(clientSchema(registry), "io.l5d.global"), {
        kind: "io.l5d.global",
      }),
      service: def(defaultKind(serviceSchema(registry), "io.l5d.global"), {
        kind: "io.l5d.global",
      }),
      originator: def(boolean(), false),
      httpAccessLog: opt(filePath("a log file path")),
      /** Linkerd's name for it on h2 routers. */
      h2AccessLog: opt(filePath("a log file path")),
      /** lintel: `clf` (Combined Log Format and lintel's fields) or `json` (a JSON object per line). */
      httpAccessLogFormat: def(oneOf(["clf", "json"] as const), "clf"),
      /** Linkerd: append to the file (true), or start it anew at each start (false). */
      httpAccessLogAppend: opt(boolean()),
      h2AccessLogAppend: opt(boolean()),
      /** Linkerd: when to rotate the file; only `never` (lintel does not rotate). */
      httpAccessLogRollPolicy: opt(neverRolled()),
      h2AccessLogRollPolicy: opt(neverRolled()),
      /** Linkerd: rotated files kept; lintel does not rotate, so no effect. */
      httpAccessLogRotateCount: opt(integer({ min: -1 })),
      h2AccessLogRotateCount: opt(integer({ min: -1 })),
      /** Linkerd's opt-in to h2 in its early releases; lintel's HTTP/2 needs none. */
      experimental: opt(boolean()),
      /** Linkerd: the trace context format a request that brought none is sent upstream with. */
      tracePropagator: opt(
        kinded("trace propagator", {
          "io.l5d.default": object({}),
          "io.l5d.zipkin": object({}),
        }),
      ),
      maxHeadersKB: def(integer({ min: 1 }), 8),
      /** lintel: the most header fields a request may have. */
      maxHeaderCount: def(integer({ min: 1 }), 100),
      maxInitialLineKB: def(integer({ min: 1 }), 4),
      maxRequestKB: opt(integer({ min: 1 })),
      maxResponseKB: opt(integer({ min: 1 })),
      maxChunkKB: opt(integer({ min: 1 })),
      streamingEnabled: def(boolean(), true),
      compressionLevel: opt(integer({ min: -1, max: 9 })),
      /** lintel: this router leaves the cluster: the destinations it may reach, and what they are told. */
      egress: opt(egressBlock),
    },
    {
      unsupported: {
        announcers: "service announcement is not supported",
      },
    },
  );
  return refine(fields, (r) => {
    if (r.servers.some((s) => s.connect) && !r.egress)
      return "a server accepts CONNECT but the router has no egress block: CONNECT needs its destination policy";
    if (r.h2AccessLog !== undefined && r.protocol !== "h2")
      return "h2AccessLog is an h2 router's key; an http router's access log is httpAccessLog";
    if (r.h2AccessLog !== undefined && r.httpAccessLog !== undefined)
      return "httpAccessLog and h2AccessLog are both set: give the access log once";
    if (r.httpAccessLogAppend === false || r.h2AccessLogAppend === false)
      return "an access log that starts anew (AccessLogAppend: false) is not supported: lintel appends; empty the file before starting";
    return undefined;
  });
}

/** Shortest admin token accepted: 16 characters, as `openssl rand -hex 8` gives at least. */
const MIN_ADMIN_TOKEN = 16;

/**
 * Why `token` cannot be the admin's bearer token, or undefined when it can. The message
 * never repeats the token: it is a secret, and `lintel check` output ends up in logs.
 */
export function adminTokenProblem(token: string): string | undefined {
  if (!/^[\x21-\x7e]*$/.test(token))
    return "the token has a space or a character that is not visible ASCII; an Authorization header cannot carry it";
  if (token.length < MIN_ADMIN_TOKEN)
    return `the token has ${token.length} characters; use at least ${MIN_ADMIN_TOKEN} (e.g. \`openssl rand -hex 24\`)`;
  return undefined;
}

/** lintel: the admin's bearer token, checked by adminTokenProblem. */
function adminToken(): Schema<string> {
  const expected = `a token of at least ${MIN_ADMIN_TOKEN} visible ASCII characters`;
  return {
    expected,
    decode(v, path, cx) {
      if (typeof v !== "string") return cx.report(path, `expected ${expected}, got ${show(v)}`);
      const problem = adminTokenProblem(v);
      return problem === undefined ? v : cx.report(path, problem);
    },
  };
}

/** An environment variable's name, as a shell would take it. */
function envName(): Schema<string> {
  const expected =
    "an environment variable name (letters, digits and _, not starting with a digit)";
  return {
    expected,
    decode: (v, path, cx) =>
      typeof v === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(v)
        ? v
        : cx.report(path, `expected ${expected}, got ${show(v)}`),
  };
}

const admin = refine(
  object({
    ip: def(host(), "127.0.0.1"),
    port: def(port(), 9990),
    shutdownGraceMs: def(integer({ min: 0 }), 10_000),
    /** lintel: on shutdown, keep serving this long after /admin/ready turns 503 (for health checks to notice). */
    drainDelayMs: def(integer({ min: 0 }), 0),
    /** lintel: a bearer token every admin path but /admin/ping and /admin/ready requires. */
    token: opt(adminToken()),
    /** lintel: an environment variable holding that token (read at startup). */
    tokenEnv: opt(envName()),
  }),
  (a) =>
    a.token !== undefined && a.tokenEnv !== undefined
      ? "give the admin token as token or as tokenEnv, not both"
      : undefined,
);

const usage = object({ enabled: def(boolean(), false), orgId: opt(string()) });

/** `auto` (one per core) or a count; 0 serves everything on the control thread. */
function workerCount(): Schema<number | "auto"> {
  const expected = 'a number of workers (0 to 64) or "auto"';
  const count = integer({ min: 0, max: 64 });
  return {
    expected,
    decode(v, path, cx) {
      if (v === "auto") return "auto";
      if (typeof v === "number" || typeof v === "string") return count.decode(v, path, cx);
      return cx.report(path, `expected ${expected}, got ${show(v)}`);
    },
  };
}

export function configSchema(registry: Registry) {
  return object(
    {
      admin: def(admin, {}),
      namers: def(list(pluginSchema(registry, "namer"), { expected: "a list of namers" }), []),
      routers: req(list(routerSchema(registry), { minItems: 1, expected: "a list of routers" })),
      telemetry: def(
        list(pluginSchema(registry, "telemeter"), { expected: "a list of telemeters" }),
        [],
      ),
      usage: def(usage, {}),
      /** lintel: data-plane threads serving the uws servers (SO_REUSEPORT); the control thread keeps the rest. */
      workers: def(workerCount(), "auto"),
      /** lintel: how host names are resolved (TTLs, servers, failures). */
      dns: def(dnsBlock, {}),
      /** lintel: where the Kubernetes API is for kinds that do not say (host/port). */
      kubernetes: def(kubernetesBlock, {}),
      /** lintel: plugin modules to load before the rest is read (paths). */
      plugins: def(list(filePath("a plugin module path")), []),
    },
    { expected: "a lintel (Linkerd 1) config mapping" },
  );
}

export type LintelConfig = Infer<ReturnType<typeof configSchema>>;
export type RouterConfig = LintelConfig["routers"][number];
export type ServerConfig = RouterConfig["servers"][number];
