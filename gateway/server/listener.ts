// What a listener engine offers the router: start accepting on ip:port, hand each request
// to the handler as a ServerExchange, stop accepting, and report connections for draining.

import type { Settings } from "node:http2";
import type { Socket } from "node:net";
import type { ServerExchange } from "../http/exchange.js";
import type { ProxyProtocol } from "./proxy-protocol.js";
import type { ListenerTls } from "./tls-listener.js";

export type Engine = "uws" | "node" | "net";

export interface ListenerOptions {
  readonly ip: string;
  readonly port: number;
  /** Largest request head (request line plus headers) accepted, in bytes. */
  readonly maxHeaderBytes: number;
  /** Terminate TLS with these certificates. */
  readonly tls?: ListenerTls;
  /** Every connection starts with a PROXY header of these versions, from these peers only. */
  readonly proxyProtocol?: ProxyProtocol;
  /** net engine: time allowed for the request head. */
  readonly headersTimeoutMs?: number;
  /** net engine: HTTP/2 by ALPN `h2` over TLS and by prior knowledge in cleartext. */
  readonly http2?: boolean;
  /** net engine: the SETTINGS of HTTP/2 connections that the config names. */
  readonly http2Settings?: Settings;
  /** net engine: the most connections open at once. */
  readonly maxConnections?: number;
  /** net engine: the most connections one client address (after PROXY) may have open. */
  readonly maxConnectionsPerClient?: number;
  /** net engine: takes over CONNECT requests; without it they are refused with 405. */
  readonly onConnect?: (request: TunnelRequest) => void;
  /**
   * net engine: takes over Upgrade requests (WebSocket); without it they are
   * served as plain requests, the Upgrade header dropped as hop-by-hop.
   */
  readonly onUpgrade?: (request: TunnelRequest) => void;
}

/** A CONNECT or Upgrade request, its connection taken over from the HTTP side. */
export interface TunnelRequest {
  /** CONNECT, or the method of an Upgrade request (GET for a WebSocket). */
  readonly method: string;
  /** The request target as sent: `host:port` (`[v6]:port`) for CONNECT. */
  readonly target: string;
  /** The protocol an Upgrade request asks for (`websocket`); "" for CONNECT. */
  readonly upgrade: string;
  /** "1.1" or "1.0", as parsed. */
  readonly httpVersion: string;
  /** The request's header fields, flat [name, value, …] with lower-case names. */
  readonly headers: readonly string[];
  readonly clientAddress: string;
  readonly clientPort: number;
  /** The client connection, taken over from the HTTP side. */
  readonly socket: Socket;
  /** Bytes the client sent after the head. */
  readonly head: Buffer;
}

export type ExchangeHandler = (exchange: ServerExchange) => void;

export interface Listener {
  readonly engine: Engine;
  /** The port actually bound (differs from the configured one when that was 0). */
  readonly port: number;
  /** Stops accepting new connections; open ones keep being served. */
  stopAccepting(): void;
  /** Closes connections with no request in flight (after stopAccepting, while draining). */
  closeIdle(): void;
  /** Closes everything now. */
  destroy(): void;
}
