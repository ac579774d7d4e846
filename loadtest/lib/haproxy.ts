// HAProxy configs for the benchmark: the proxy lintel is compared with (keep-alive to the
// backend; one thread unless --workers says otherwise), and the fast backend itself
// (HAProxy answering from memory, so the backend is never what limits either proxy).

export interface ProxyOptions {
  readonly listenPort: number;
  readonly backendPort: number;
  /** nbthread: the same thread count as lintel's workers (default 1). */
  readonly threads?: number;
  /**
   * The same proxy terminating TLS (cert+key PEM) on another port; `alpn` (e.g.
   * "h2,http/1.1", for the h2 row) is what the listener offers by ALPN. A client that sends
   * no ALPN (wrk) gets HTTP/1.1 either way.
   */
  readonly tls?: { port: number; pem: string; alpn?: string };
  /**
   * A frontend on another port that originates TLS to the backend's TLS port, verifying
   * its certificate against `caFile` for `name` (SNI), as an egress proxy does.
   */
  readonly egress?: { port: number; backendTlsPort: number; caFile: string; name: string };
  /** A frontend on another port in front of the large-body backend. */
  readonly large?: { port: number; backendPort: number };
  /** A frontend on another port in front of the JSON backend (the compression row). */
  readonly json?: { port: number; backendPort: number };
  /**
   * A frontend on another port in front of the WebSocket echo server (the websocket row):
   * http mode tunnels upgraded connections by itself; `timeout tunnel` is how long an
   * idle WebSocket stays open (without it, `timeout client`/`server` apply).
   */
  readonly ws?: { port: number; backendPort: number };
}

export function proxyConfig(o: ProxyOptions): string {
  const { tls, egress, large, json, ws } = o;
  return `global
  nbthread ${o.threads ?? 1}
  maxconn 4096
  tune.bufsize 131072

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always

frontend bench
  bind 127.0.0.1:${o.listenPort}
${
  tls
    ? `  bind 127.0.0.1:${tls.port} ssl crt ${tls.pem}${tls.alpn ? ` alpn ${tls.alpn}` : ""}
`
    : ""
}  default_backend app

backend app
  server app 127.0.0.1:${o.backendPort} maxconn 4096
${
  egress
    ? `
frontend egress
  bind 127.0.0.1:${egress.port}
  default_backend tlsapp

backend tlsapp
  server app 127.0.0.1:${egress.backendTlsPort} ssl verify required ca-file ${egress.caFile} sni str(${egress.name}) maxconn 4096
`
    : ""
}${
  large
    ? `
frontend large
  bind 127.0.0.1:${large.port}
  default_backend largeapp

backend largeapp
  server app 127.0.0.1:${large.backendPort} maxconn 4096
`
    : ""
}${
  json
    ? `
frontend json
  bind 127.0.0.1:${json.port}
  default_backend jsonapp

backend jsonapp
  server app 127.0.0.1:${json.backendPort} maxconn 4096
`
    : ""
}${
  ws
    ? `
frontend ws
  bind 127.0.0.1:${ws.port}
  default_backend wsapp

backend wsapp
  timeout tunnel 1h
  server app 127.0.0.1:${ws.backendPort} maxconn 4096
`
    : ""
}`;
}

/**
 * A backend answering every request with `bodyFile`'s bytes (200, keep-alive), also over
 * TLS when `tls` is given (and over TLS with ALPN h2 on `tls.h2Port`, the h2 row's
 * direct target: a port of its own, so the TLS port the egress row uses is unchanged),
 * with `threads` threads (default 1), as `contentType` (the compression row's is JSON).
 */
export function backendConfig(
  listenPort: number,
  bodyFile: string,
  bodyBytes: number,
  tls?: { port: number; pem: string; h2Port?: number },
  threads = 1,
  contentType = "application/octet-stream",
): string {
  // The answer is built in one buffer: make room for the body plus headers.
  const bufsize = Math.max(16_384, bodyBytes + 4096);
  return `global
  nbthread ${threads}
  maxconn 4096
  tune.bufsize ${bufsize}

defaults
  mode http
  timeout client 60s
  option http-keep-alive

frontend backend
  bind 127.0.0.1:${listenPort}
${tls ? `  bind 127.0.0.1:${tls.port} ssl crt ${tls.pem}\n` : ""}${tls?.h2Port ? `  bind 127.0.0.1:${tls.h2Port} ssl crt ${tls.pem} alpn h2,http/1.1\n` : ""}  http-request return status 200 content-type ${contentType} file ${bodyFile}
`;
}
