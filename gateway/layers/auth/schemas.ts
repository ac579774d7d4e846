// Config values the auth layers share: an http(s) URL, a header field name (one a layer
// may read or set), and a layer's `name` (its metrics scope).

import { nonEmptyString, refine, type Schema, show, transform } from "../../config/schema.js";
import { HOP_BY_HOP } from "../../http/headers.js";

export function httpUrl(): Schema<URL> {
  const expected = "an http:// or https:// URL";
  return {
    expected,
    decode(v, path, cx) {
      if (typeof v !== "string") return cx.report(path, `expected ${expected}, got ${show(v)}`);
      let url: URL;
      try {
        url = new URL(v.trim());
      } catch {
        return cx.report(path, `expected ${expected}, got ${show(v)}`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:")
        return cx.report(path, `expected ${expected}, got the scheme ${url.protocol}`);
      if (url.username !== "" || url.password !== "")
        return cx.report(path, "credentials in the URL are not supported");
      if (url.hash !== "") return cx.report(path, "a URL fragment (#...) is not sent: remove it");
      return url;
    },
  };
}

/** RFC 9110 §5.1 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Fields the request path frames or routes by: no layer may copy or set them. */
const FRAMING: ReadonlySet<string> = new Set([...HOP_BY_HOP, "host", "content-length", "expect"]);

/** A header field name, lower-cased; one that frames the message is refused. */
export function headerName(): Schema<string> {
  return transform(
    refine(nonEmptyString("a header name"), (v) => {
      if (!TOKEN.test(v)) return `expected a header name, got ${show(v)}`;
      if (FRAMING.has(v.toLowerCase()))
        return `${v.toLowerCase()} frames or routes the request: it cannot be copied or set`;
      return undefined;
    }),
    (v) => v.toLowerCase(),
  );
}

/** A layer's name in metrics (`rt/<router>/auth/<name>`): letters, digits, `-`, `_`, `.`. */
export function layerName(): Schema<string> {
  return refine(nonEmptyString("a name"), (v) =>
    /^[A-Za-z0-9_.-]+$/.test(v)
      ? undefined
      : `expected letters, digits, "-", "_" or ".", got ${show(v)}`,
  );
}
