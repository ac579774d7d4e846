// nginx as a peer proxy in the benchmark, configured as someone tuning it for a reverse
// proxy in production would (loadtest/README.md says why each setting):
// - one worker process (`worker_processes`, the same count as HAProxy's nbthread), in
//   the foreground (`daemon off`) under its master, so the bench stops it by PID;
// - keep-alive to the backend: an `upstream` block with `keepalive`, `proxy_http_version
//   1.1` and an empty `Connection` header. nginx's default (HTTP/1.0 upstream, no pool)
//   opens and closes a backend connection per request, which nobody tuning it keeps;
// - no request cap per connection (`keepalive_requests`, 1000 by default on both sides;
//   HAProxy, Caddy and lintel have none), no access log, a shared TLS session cache;
// - response buffers that hold a 64 KiB body in memory (HAProxy's buffers are 128 KiB
//   here) and never a temp file on disk;
// - its own pid file, error log (stderr), temp directories and ports: nothing of the
//   Debian package's service (/etc/nginx, /run/nginx.pid, /var/lib/nginx, /var/log/nginx).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PeerLaunch, PeerOptions } from "./peers.js";

/** No request cap per connection, in practice (nginx wants a number). */
const MANY_REQUESTS = 100_000_000;

export function nginxConfig(o: PeerOptions): string {
  const { tls, egress, large, ws, dir } = o;
  const upstream = (name: string, port: number) => `  upstream ${name} {
    server 127.0.0.1:${port};
    keepalive ${o.idleUpstream};
    keepalive_requests ${MANY_REQUESTS};
    keepalive_timeout 60s;
  }
`;
  // Running as root (the bench usually does), the worker would switch to `nobody`, who
  // cannot enter the bench's private temp directory; as another user the line is ignored.
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  return `# lintel bench: nginx as a peer proxy (loadtest/lib/nginx.ts)
${user}daemon off;
master_process on;
worker_processes ${o.threads};
worker_rlimit_nofile 16384;
pid ${join(dir, "nginx.pid")};
error_log stderr warn;

events {
  worker_connections 4096;
}

http {
  access_log off;
  client_body_temp_path ${join(dir, "client_body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};

  keepalive_timeout 75s;
  keepalive_requests ${MANY_REQUESTS};

  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_buffer_size 16k;
  proxy_buffers 8 16k;
  proxy_max_temp_file_size 0;

${upstream("app", o.backendPort)}${egress ? upstream("tlsapp", egress.backendTlsPort) : ""}${large ? upstream("largeapp", large.backendPort) : ""}
  server {
    listen 127.0.0.1:${o.listenPort};
${
  tls
    ? `    listen 127.0.0.1:${tls.port} ssl${tls.h2 ? " http2" : ""};
    ssl_certificate ${tls.certPath};
    ssl_certificate_key ${tls.keyPath};
    ssl_session_cache shared:bench_tls:10m;
    ssl_session_timeout 1h;
`
    : ""
}    location / {
      proxy_pass http://app;
    }
  }
${
  egress
    ? `
  server {
    listen 127.0.0.1:${egress.port};
    location / {
      proxy_pass https://tlsapp;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${egress.caFile};
      proxy_ssl_name ${egress.name};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
`
    : ""
}${
  large
    ? `
  server {
    listen 127.0.0.1:${large.port};
    location / {
      proxy_pass http://largeapp;
    }
  }
`
    : ""
}${
  ws
    ? `
  server {
    listen 127.0.0.1:${ws.port};
    location / {
      proxy_pass http://127.0.0.1:${ws.backendPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
`
    : ""
}}
`;
}

/** Writes nginx.conf into o.dir; the command runs nginx in the foreground with it. */
export function nginxLaunch(o: PeerOptions): PeerLaunch {
  const config = join(o.dir, "nginx.conf");
  writeFileSync(config, nginxConfig(o));
  // -p: relative paths resolve in the bench's directory; -e: the log nginx opens before
  // reading its config is stderr, not /var/log/nginx/error.log.
  const base = ["-p", o.dir, "-e", "stderr", "-c", config];
  return { config, cmd: "nginx", args: base, check: { args: [...base, "-t", "-q"] } };
}
