// What the peer proxies of the benchmark (nginx in lib/nginx.ts, Caddy in lib/caddy.ts)
// are given and what they hand back: the same listeners and backends as HAProxy's config
// (lib/haproxy.ts), and the command that starts each with files of its own.

import { spawnSync } from "node:child_process";

export interface PeerOptions {
  /**
   * A directory of the peer's own (config, pid file, temp files, HOME for Caddy): nothing
   * of the Debian package's service (its config, /run, /var/lib, /var/log) is used.
   */
  readonly dir: string;
  /** nginx worker_processes, Caddy GOMAXPROCS: the same count as HAProxy's nbthread. */
  readonly threads: number;
  readonly listenPort: number;
  readonly backendPort: number;
  /** Idle keep-alive connections to each backend the proxy keeps for reuse. */
  readonly idleUpstream: number;
  /**
   * The same proxy terminating TLS on another port (the bench certificate, lib/certs.ts);
   * `h2`: HTTP/2 offered there too by ALPN (the h2 row), HTTP/1.1 to the backend still.
   */
  readonly tls?: { port: number; certPath: string; keyPath: string; h2?: boolean };
  /**
   * A listener on another port that originates TLS to the backend's TLS port, verifying
   * its certificate against `caFile` for `name` (SNI), as HAProxy's egress frontend does.
   */
  readonly egress?: { port: number; backendTlsPort: number; caFile: string; name: string };
  /** A listener on another port in front of the large-body backend. */
  readonly large?: { port: number; backendPort: number };
  /** A listener on another port in front of the WebSocket echo server (the websocket row). */
  readonly ws?: { port: number; backendPort: number };
}

export interface PeerLaunch {
  /** The config file written. */
  readonly config: string;
  readonly cmd: string;
  readonly args: string[];
  readonly env?: Record<string, string>;
  /** The same binary checking the config without serving it (nginx -t, caddy validate). */
  readonly check: { readonly args: string[] };
}

/** Runs a peer's config check; undefined when it passes, else what the peer printed. */
export function checkPeer(launch: PeerLaunch): string | undefined {
  const r = spawnSync(launch.cmd, launch.check.args, {
    encoding: "utf8",
    timeout: 60_000,
    env: launch.env ? { ...process.env, ...launch.env } : process.env,
  });
  if (r.status === 0) return undefined;
  return `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}`.trim();
}
