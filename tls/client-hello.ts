// Reads the server name (SNI) and the offered application protocols (ALPN) out of a TLS
// ClientHello before the handshake starts, so a listener can pick the certificate for a
// connection up front, and tell an ACME TLS-ALPN-01 validation (which offers only
// acme-tls/1) from a client (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301, RFC 8737). Only
// what that needs is parsed; the TLS stack validates the rest.

export type ClientHelloRead =
  /** Not enough bytes yet: call again with more. */
  | { readonly status: "more" }
  /** A ClientHello; serverName is absent when the client sent no host name. */
  | {
      readonly status: "hello";
      readonly serverName: string | undefined;
      /** The ALPN protocols offered, in the client's order (empty without the extension). */
      readonly alpn: readonly string[];
    }
  /** Not a TLS ClientHello (plain HTTP on a TLS port, or garbage). */
  | { readonly status: "not-tls" };

const HANDSHAKE_RECORD = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME_EXTENSION = 0;
const ALPN_EXTENSION = 16;
const HOST_NAME = 0;
/** A ClientHello is a few hundred bytes (under 2 KB with post-quantum key shares). */
const MAX_CLIENT_HELLO = 64 * 1024;

const MORE: ClientHelloRead = { status: "more" };
const NOT_TLS: ClientHelloRead = { status: "not-tls" };

/** Reads the first handshake message from the bytes a client sent, possibly over several records. */
export function readClientHello(buf: Buffer): ClientHelloRead {
  // Handshake messages may be fragmented over records: gather the fragments first.
  const fragments: Buffer[] = [];
  let gathered = 0;
  let needed = -1;
  let at = 0;
  while (needed < 0 || gathered < needed) {
    if (buf.length < at + 5) return MORE;
    if (buf[at] !== HANDSHAKE_RECORD || buf[at + 1] !== 3) return NOT_TLS;
    const length = buf.readUInt16BE(at + 3);
    if (length === 0) return NOT_TLS;
    if (buf.length < at + 5 + length) return MORE;
    const fragment = buf.subarray(at + 5, at + 5 + length);
    fragments.push(fragment);
    gathered += fragment.length;
    at += 5 + length;
    if (needed < 0 && gathered >= 4) {
      const head = fragments.length === 1 ? fragment : Buffer.concat(fragments);
      if (head[0] !== CLIENT_HELLO) return NOT_TLS;
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO) return NOT_TLS;
    }
  }
  const hello = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
  const ext = extensionsOf(hello.subarray(4, needed));
  if (ext === null) return NOT_TLS;
  const serverName = ext.serverName === undefined ? undefined : hostNameOf(ext.serverName);
  const alpn = ext.alpn === undefined ? NO_PROTOCOLS : protocolsOf(ext.alpn);
  if (serverName === null || alpn === null) return NOT_TLS;
  return { status: "hello", serverName, alpn };
}

const NO_PROTOCOLS: readonly string[] = Object.freeze([]);

/** The server name and ALPN extensions' bodies of a ClientHello body; null when malformed. */
function extensionsOf(body: Buffer): { serverName?: Buffer; alpn?: Buffer } | null {
  // legacy_version(2) random(32) session_id<0..32> cipher_suites<2..> compression<1..>
  let at = 34;
  if (body.length < at + 1) return null;
  at += 1 + body[at]!;
  if (body.length < at + 2) return null;
  at += 2 + body.readUInt16BE(at);
  if (body.length < at + 1) return null;
  at += 1 + body[at]!;
  const found: { serverName?: Buffer; alpn?: Buffer } = {};
  if (body.length === at) return found; // no extensions at all
  if (body.length < at + 2) return null;
  const end = at + 2 + body.readUInt16BE(at);
  if (end > body.length) return null;
  at += 2;
  while (at + 4 <= end) {
    const type = body.readUInt16BE(at);
    const length = body.readUInt16BE(at + 2);
    at += 4;
    if (at + length > end) return null;
    if (type === SERVER_NAME_EXTENSION) found.serverName = body.subarray(at, at + length);
    else if (type === ALPN_EXTENSION) found.alpn = body.subarray(at, at + length);
    at += length;
  }
  return found;
}

/** The protocol names of an ALPN extension; null when malformed. */
function protocolsOf(ext: Buffer): readonly string[] | null {
  if (ext.length < 2) return null;
  const end = 2 + ext.readUInt16BE(0);
  if (end > ext.length) return null;
  const out: string[] = [];
  let at = 2;
  while (at < end) {
    const length = ext[at]!;
    at += 1;
    if (length === 0 || at + length > end) return null;
    out.push(ext.toString("latin1", at, at + length));
    at += length;
  }
  return out;
}

function hostNameOf(ext: Buffer): string | undefined | null {
  if (ext.length < 2) return null;
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  let at = 2;
  while (at + 3 <= end) {
    const type = ext[at]!;
    const length = ext.readUInt16BE(at + 1);
    at += 3;
    if (at + length > end) return null;
    if (type === HOST_NAME) return ext.toString("latin1", at, at + length);
    at += length;
  }
  return undefined;
}
