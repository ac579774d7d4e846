// A finished span as exporters see it (Zipkin v2's model): ids, name, kind, start and
// duration in microseconds, the local service and address, the remote address, tags.

export type SpanKind = "SERVER" | "CLIENT";

export interface FinishedSpan {
  readonly traceId: string;
  readonly id: string;
  readonly parentId: string | undefined;
  /** The HTTP method, e.g. `GET`. */
  readonly name: string;
  readonly kind: SpanKind;
  /** Start, in µs since the epoch. */
  readonly timestamp: number;
  /** In µs, at least 1. */
  readonly duration: number;
  /** The router's label: the local service name unless the exporter is configured with one. */
  readonly localService: string;
  /** This end's address, `ip:port` (the server a request arrived on), when known. */
  readonly localAddress: string | undefined;
  /** The other end's address, `ip:port` (the client, or the endpoint called), when known. */
  readonly remoteAddress: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  /** Whether it failed (an error tag is set then). */
  readonly error: boolean;
}

/** Now, in µs since the epoch (sub-millisecond from the monotonic clock). */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** `ip:port` (or `[ip6]:port`) split, for exporters' endpoint objects; undefined if not one. */
export function splitAddress(a: string | undefined): { ip: string; port: number } | undefined {
  if (a === undefined) return undefined;
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(a);
  if (!m) return undefined;
  return { ip: m[1]!, port: Number(m[2]) };
}
