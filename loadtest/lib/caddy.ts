// Caddy as a peer proxy in the benchmark: its native JSON config, one `reverse_proxy`
// handler per listener (loadtest/README.md says why each setting):
// - one thread of Go code (GOMAXPROCS, the same count as HAProxy's nbthread);
// - automatic HTTPS off (no ACME, no redirect listener), the bench certificate loaded
//   from files for the TLS listener, HTTP/1.1 and HTTP/2 only (no HTTP/3 listener);
// - keep-alive to the backend (Caddy's default) with as many idle connections kept as
//   nginx keeps (`max_idle_conns_per_host`; Caddy's default, 32, is below the bench's 64
//   client connections and would open and close backend connections under load);
// - admin API off, logs at ERROR only (no access log), a 1 s grace period on stop;
// - its own config file, pid file, storage and HOME/XDG directories: nothing of the Debian
//   package's service (/etc/caddy, /var/lib/caddy, its admin port 2019).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PeerLaunch, PeerOptions } from "./peers.js";

const CERT_TAG = "lintel-bench";

export function caddyConfig(o: PeerOptions): Record<string, unknown> {
  const { tls, egress, large, ws } = o;
  const proxyTo = (port: number, tlsTo?: { caFile: string; name: string }) => [
    {
      handle: [
        {
          handler: "reverse_proxy",
          upstreams: [{ dial: `127.0.0.1:${port}` }],
          transport: {
            protocol: "http",
            versions: ["1.1"],
            keep_alive: { max_idle_conns_per_host: o.idleUpstream },
            ...(tlsTo
              ? { tls: { root_ca_pem_files: [tlsTo.caFile], server_name: tlsTo.name } }
              : {}),
          },
        },
      ],
    },
  ];
  const server = (port: number, routes: unknown[], extra: Record<string, unknown> = {}) => ({
    listen: [`127.0.0.1:${port}`],
    automatic_https: { disable: true },
    protocols: ["h1", "h2"],
    routes,
    ...extra,
  });
  const servers: Record<string, unknown> = {
    plain: server(o.listenPort, proxyTo(o.backendPort)),
  };
  if (tls)
    servers.tls = server(tls.port, proxyTo(o.backendPort), {
      tls_connection_policies: [{ certificate_selection: { any_tag: [CERT_TAG] } }],
    });
  if (egress)
    servers.egress = server(
      egress.port,
      proxyTo(egress.backendTlsPort, { caFile: egress.caFile, name: egress.name }),
    );
  if (large) servers.large = server(large.port, proxyTo(large.backendPort));
  // reverse_proxy tunnels WebSocket upgrades by itself, with no stream timeout by default.
  if (ws) servers.ws = server(ws.port, proxyTo(ws.backendPort));
  return {
    admin: { disabled: true },
    logging: { logs: { default: { level: "ERROR" } } },
    storage: { module: "file_system", root: join(o.dir, "data") },
    apps: {
      http: { grace_period: "1s", servers },
      ...(tls
        ? {
            tls: {
              certificates: {
                load_files: [{ certificate: tls.certPath, key: tls.keyPath, tags: [CERT_TAG] }],
              },
            },
          }
        : {}),
    },
  };
}

/** Writes caddy.json into o.dir; the command runs Caddy in the foreground with it. */
export function caddyLaunch(o: PeerOptions): PeerLaunch {
  const config = join(o.dir, "caddy.json");
  writeFileSync(config, `${JSON.stringify(caddyConfig(o), null, 2)}\n`);
  const home = join(o.dir, "home");
  return {
    config,
    cmd: "caddy",
    args: ["run", "--config", config, "--pidfile", join(o.dir, "caddy.pid")],
    env: {
      GOMAXPROCS: String(o.threads),
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      XDG_DATA_HOME: join(home, ".local/share"),
      XDG_CACHE_HOME: join(home, ".cache"),
    },
    check: { args: ["validate", "--config", config] },
  };
}
