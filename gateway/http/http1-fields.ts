// The HTTP/1.1 field-line grammar (RFC 9110 §5, RFC 9112 §5), shared by lintel's request
// parser (the listener side) and its response parser (the upstream side): one strict
// reading of header and trailer lines, so a line one side refuses the other refuses too.

/** Whether a character code is optional whitespace (RFC 9110 §5.6.3: space or tab). */
export const isOws = (c: number) => c === 32 || c === 9;

/** 1 for the characters of a token (RFC 9110 §5.6.2 tchar), which a field name is made of. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

/**
 * 1 for the characters a field value may hold (RFC 9110 §5.5): VCHAR, obs-text, SP and
 * HTAB; not NUL, CR, LF or another control character (0x00-0x1f but HTAB, and DEL).
 */
export const FIELD_VCHAR = new Uint8Array(256);
FIELD_VCHAR[9] = 1;
for (let c = 32; c < 256; c++) if (c !== 127) FIELD_VCHAR[c] = 1;

/** Makes the error a refused line becomes (each side has its own error class). */
export type FieldError = (why: string) => Error;

/**
 * Header (or trailer) lines from `from` to the end of `text` into a flat array with
 * lower-case names and values without surrounding whitespace. `text` is the start of
 * `bytes` as latin1, so offsets are the same in both; the scan reads the bytes (faster
 * than charCodeAt) in one pass, each name checked to be a token and each value free of
 * control characters by table as the line goes by.
 */
export function parseFieldLines(
  bytes: Uint8Array,
  text: string,
  from: number,
  fail: FieldError,
): string[] {
  const out: string[] = [];
  const len = text.length;
  let pos = from;
  while (pos < len) {
    let i = pos;
    while (i < len && TCHAR[bytes[i]!] === 1) i++;
    if (i === pos || i === len || bytes[i] !== 58) throw badLine(text, pos, fail);
    const colon = i++;
    while (i < len && FIELD_VCHAR[bytes[i]!] === 1) i++;
    // Lines end at CRLF, the last one at the end of the text.
    if (i < len && (bytes[i] !== 13 || bytes[i + 1] !== 10)) throw badLine(text, pos, fail);
    let start = colon + 1;
    let end = i;
    while (start < end && isOws(bytes[start]!)) start++;
    while (end > start && isOws(bytes[end - 1]!)) end--;
    out.push(text.slice(pos, colon).toLowerCase(), text.slice(start, end));
    pos = i + 2;
  }
  return out;
}

/** Why the field line at `pos` was refused (the slow path: off the per-message cost). */
function badLine(text: string, pos: number, fail: FieldError): Error {
  let eol = text.indexOf("\r\n", pos);
  if (eol < 0) eol = text.length;
  const line = text.slice(pos, eol);
  const shown = JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
  // RFC 9110 §5.5: CR, LF and NUL are not allowed in a field. Passed on, a bare CR or LF
  // would let a peer split the message for a lenient reader.
  if (/[\r\n]/.test(line)) return fail(`bare CR or LF in header line ${shown}`);
  if (line.includes("\0")) return fail(`NUL in header line ${shown}`);
  const colon = line.indexOf(":");
  // No colon, an empty name, or a line starting with whitespace (obs-fold, RFC 9112 §5.2).
  if (colon <= 0 || isOws(line.charCodeAt(0))) return fail(`invalid header line ${shown}`);
  const name = line.slice(0, colon);
  // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon.
  if (/^[^\t ]+[\t ]+$/.test(name)) return fail(`space before colon in header line ${shown}`);
  for (let i = 0; i < name.length; i++) {
    if (TCHAR[name.charCodeAt(i)] !== 1) {
      // RFC 9110 §5.1: a field name is a token.
      return fail(
        `invalid character ${hex(name.charCodeAt(i))} in header name ${JSON.stringify(name)}`,
      );
    }
  }
  for (let i = colon + 1; i < line.length; i++) {
    if (FIELD_VCHAR[line.charCodeAt(i)] !== 1) {
      // RFC 9110 §5.5: no control character but HTAB in a field value.
      return fail(
        `control character ${hex(line.charCodeAt(i))} in the value of header ${JSON.stringify(name)}`,
      );
    }
  }
  return fail(`invalid header line ${shown}`);
}

/** A character code as 0xNN. */
const hex = (c: number) => `0x${c.toString(16).padStart(2, "0")}`;

/** A Content-Length value (1 to 15 digits) as a number, or -1. */
export function decimalOf(v: string): number {
  if (v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
