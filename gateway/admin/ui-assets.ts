// The admin UI's files as the admin server serves them: the page (the same for every UI
// path; the script draws the one asked for), its one script bundle and its stylesheet,
// built by `npm run build` into dist/admin-ui (tsconfig.ui.json). Read once, with an ETag.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UI_PAGES, UI_SCRIPT_PATH, UI_STYLE_PATH } from "./paths.js";

/** The files the build writes (tsconfig.ui.json and the build script's copy), by admin path. */
export const UI_FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> =
  {
    [UI_SCRIPT_PATH]: { file: "lintel.js", type: "text/javascript; charset=utf-8" },
    [UI_STYLE_PATH]: { file: "lintel.css", type: "text/css; charset=utf-8" },
  };

const PAGE = { file: "index.html", type: "text/html; charset=utf-8" };

/**
 * Largest the UI may be, script + page + stylesheet, uncompressed: it is served from the
 * appliance itself, often over a slow management link, and must stay a page, not an app.
 */
export const UI_BUDGET_BYTES = 60 * 1024;

/** Only this server's own files run on its pages. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * Where the build puts the UI: dist/admin-ui beside dist/gateway when lintel runs from
 * dist/, or under the checkout's dist/ when it runs from source (tests, tsx).
 */
export function defaultUiDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const inDist = basename(resolve(here, "../..")) === "dist";
  return resolve(here, inDist ? "../../admin-ui" : "../../dist/admin-ui");
}

export interface UiAnswer {
  readonly status: number;
  readonly headers: Record<string, string | number>;
  readonly body: Buffer | string;
}

interface Loaded {
  readonly body: Buffer;
  readonly etag: string;
}

export class UiAssets {
  /** Files read so far; a missing one is looked for again next time (a build may add it). */
  private readonly files = new Map<string, Loaded>();

  constructor(readonly dir: string = defaultUiDir()) {}

  /** The answer for a GET or HEAD of an admin path, or undefined when the path is not the UI's. */
  answer(method: string, pathname: string, ifNoneMatch: string | undefined): UiAnswer | undefined {
    if (method !== "GET" && method !== "HEAD") return undefined;
    const asset = UI_PAGES.includes(pathname) ? PAGE : UI_FILES[pathname];
    if (!asset) return undefined;
    const f = this.load(asset.file);
    if (!f) {
      return {
        status: 503,
        headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
        body: `the admin UI is not built: ${join(this.dir, asset.file)} is missing; run \`npm run build\` in the lintel checkout\n`,
      };
    }
    // no-cache: the names are not versioned, so a browser asks again and gets a 304.
    const headers = {
      ...SECURITY_HEADERS,
      "content-type": asset.type,
      "cache-control": "no-cache",
      etag: f.etag,
    };
    if (ifNoneMatch === f.etag) return { status: 304, headers, body: "" };
    return { status: 200, headers: { ...headers, "content-length": f.body.length }, body: f.body };
  }

  private load(file: string): Loaded | undefined {
    const known = this.files.get(file);
    if (known) return known;
    let body: Buffer;
    try {
      body = readFileSync(join(this.dir, file));
    } catch {
      return undefined;
    }
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    const loaded = { body, etag };
    this.files.set(file, loaded);
    return loaded;
  }
}
