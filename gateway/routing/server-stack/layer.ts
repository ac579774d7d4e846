// The contract of the request path's policy layers: one concern per layer, run for each
// request on a listener before it is identified (a server's stack and its `layers`), and
// after it is identified for the service names a `service` entry's `layers` match. A
// layer looks at the request and lets it pass, refuses it (throws a ProxyError: the
// router answers with it), answers it itself, or decides later (an auth sub-request, a
// shared rate-limit store) and then lets it go on or refuses it through the answerer.
// Each layer is made by a `serverLayer` kind: the built-in ones, and the configured ones.

import type { CidrSet } from "../../http/cidr.js";
import type { ProxyError } from "../../http/errors.js";
import type { ServerExchange } from "../../http/exchange.js";
import { clientBehind } from "../../http/forwarded.js";
import type { ResponseCompression } from "../response-compression.js";

/** A request as the layers see it (the router's per-request state). */
export interface ArrivingRequest {
  readonly ex: ServerExchange;
  /** The server the request arrived on: whose X-Forwarded-For it believes. */
  readonly server: { readonly trustedProxies: CidrSet };
  /** The service name (`/svc/...`) once identified: set for a service's layers. */
  readonly service: string | undefined;
  /** The client's address as the trusted hops give it (see clientAddress), once read. */
  client: string | undefined;
  /** Fields the layers add to whatever answers the request (RateLimit, HSTS), flat. */
  responseHeaders: string[] | undefined;
  /** Fields of the upstream's answer the layers drop (lower case; lintel's own keep theirs). */
  dropResponseFields: Set<string> | undefined;
  /** The claims of a token a layer verified (jwt), for the layers after it. */
  claims: Readonly<Record<string, unknown>> | undefined;
  /** How a layer has the forwarded response compressed (else the router's compressionLevel). */
  compression: ResponseCompression | undefined;
}

/** How a layer answers a request itself, or ends a decision it took later. */
export interface Answerer {
  answer(req: ArrivingRequest, status: number, headers: readonly string[], body: Buffer): void;
  /** After `arrive` returned LATER: the request goes on to the next layer. */
  proceed(req: ArrivingRequest): void;
  /** After `arrive` returned LATER: the request is refused with `err`. */
  refuse(req: ArrivingRequest, err: ProxyError): void;
}

/** `arrive`'s answer when the layer decides later, through `proceed`, `refuse` or `answer`. */
export const LATER = "later";

/** false: the request passes on; true: the layer answers it; LATER: it decides later. */
export type Verdict = boolean | typeof LATER;

export interface ServerLayer {
  /** Names the layer in `describe` output and in errors. */
  readonly name: string;
  /**
   * Looks at an arriving request: false lets it pass to the next layer, true means the
   * layer answers it (now or later, through `answerer.answer`), LATER that it calls
   * `answerer.proceed`, `refuse` or `answer` once it knows; a thrown ProxyError refuses it.
   */
  arrive(req: ArrivingRequest, answerer: Answerer): Verdict;
  /** The request is finished: gives back what `arrive` took (called when `arrive` returned). */
  leave?(req: ArrivingRequest): void;
}

/**
 * The client's address: the peer (or what its PROXY header named), or, when that peer is
 * a trusted proxy, the first untrusted address of X-Forwarded-For read from the right.
 */
export function clientAddress(req: ArrivingRequest): string {
  req.client ??= clientBehind(req.ex.clientAddress, req.ex.headers, req.server.trustedProxies);
  return req.client;
}

/** Adds response fields to whatever answers `req`. */
export function addResponseHeaders(req: ArrivingRequest, fields: readonly string[]): void {
  if (req.responseHeaders === undefined) req.responseHeaders = [...fields];
  else req.responseHeaders.push(...fields);
}
