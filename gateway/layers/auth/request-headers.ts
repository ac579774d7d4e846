// How the auth layers change the request that goes on upstream: drop the credentials they
// checked and any client-sent copy of the identity fields they set, then add those fields
// (a verified claim, the user name, what the auth service answered). Values a client or a
// token controls are made safe to send as a field value first.

import type { ArrivingRequest } from "../../routing/server-stack/layer.js";

/** Printable ASCII, space and tab: a field value that can be sent as it is. */
const PLAIN_VALUE = /^[\t\x20-\x7e]*$/;

/**
 * `value` as a field value: unchanged when it is printable ASCII, else with each byte of
 * its UTF-8 outside that range (and `%`) percent-encoded, so that neither a line break nor
 * a byte the upstream's parser refuses can reach the request head.
 */
export function fieldValue(value: string): string {
  if (PLAIN_VALUE.test(value)) return value;
  let out = "";
  for (const b of Buffer.from(value, "utf8")) {
    if (b === 9 || (b >= 0x20 && b <= 0x7e && b !== 0x25)) out += String.fromCharCode(b);
    else out += `%${b < 16 ? "0" : ""}${b.toString(16).toUpperCase()}`;
  }
  return out;
}

/** What a layer does to the request's fields once it lets the request pass. */
export class HeaderEdit {
  /** True when the edit changes nothing (no field to drop or add): the request is left alone. */
  readonly empty: boolean;

  constructor(
    /** Lower-case names of the fields removed (the credentials, the fields set below). */
    private readonly drop: ReadonlySet<string>,
    /** A cookie removed from the Cookie fields (a token read from a cookie), if any. */
    private readonly dropCookie: string | undefined = undefined,
  ) {
    this.empty = drop.size === 0 && dropCookie === undefined;
  }

  /**
   * Applies the edit to `req`, adding `add` (flat, lower-case names): a new field list
   * replaces the request's. Nothing is copied when there is nothing to change.
   */
  apply(req: ArrivingRequest, add: readonly string[]): void {
    if (this.empty && add.length === 0) return;
    const ex = req.ex;
    const headers = ex.headers;
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (this.drop.has(name)) continue;
      if (name === "cookie" && this.dropCookie !== undefined) {
        const rest = withoutCookie(headers[i + 1]!, this.dropCookie);
        if (rest !== "") out.push(name, rest);
        continue;
      }
      out.push(name, headers[i + 1]!);
    }
    for (let i = 0; i < add.length; i++) out.push(add[i]!);
    ex.replaceHeaders(out);
  }
}

/** A Cookie field's value without the cookies named `name`. */
export function withoutCookie(value: string, name: string): string {
  const kept: string[] = [];
  for (const part of value.split(";")) {
    const p = part.trim();
    if (p === "") continue;
    const eq = p.indexOf("=");
    if ((eq === -1 ? p : p.slice(0, eq).trim()) === name) continue;
    kept.push(p);
  }
  return kept.join("; ");
}

/** The value of cookie `name` in the request's Cookie fields, the first one. */
export function cookieValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== "cookie") continue;
    for (const part of headers[i + 1]!.split(";")) {
      const eq = part.indexOf("=");
      if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

/** How many fields named `name` the request has (credentials must come once). */
export function countFields(headers: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) n++;
  return n;
}

/** A quoted-string for an auth-param (RFC 9110 §11.2): `"` and `\` escaped, controls dropped. */
export function quoted(value: string): string {
  return `"${value.replace(/[^\t\x20-\x7e]/g, "").replace(/["\\]/g, "\\$&")}"`;
}
