// Who may use the admin server: the optional bearer token (admin.token or admin.tokenEnv)
// every path needs but the health checks and the UI's static files, and the Origin check
// that keeps another site's page from making a browser send a state-changing request.

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { adminTokenProblem } from "../config/config-schema.js";

/** What the admin block says about the token. */
export interface AdminTokenConfig {
  readonly token?: string | undefined;
  readonly tokenEnv?: string | undefined;
}

/** The token the admin server requires, or undefined for none; throws naming what is wrong. */
export function adminToken(
  admin: AdminTokenConfig,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (admin.token !== undefined) return admin.token;
  if (admin.tokenEnv === undefined) return undefined;
  const value = env[admin.tokenEnv];
  if (value === undefined)
    throw new Error(`admin.tokenEnv: the environment variable ${admin.tokenEnv} is not set`);
  const problem = adminTokenProblem(value);
  if (problem !== undefined) throw new Error(`admin.tokenEnv: $${admin.tokenEnv}: ${problem}`);
  return value;
}

/** A refusal: the status and the text to answer with. */
export interface Refusal {
  readonly status: 401 | 403;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Methods that only read; every other one (POST above all) passes the Origin check. */
const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD"]);

/**
 * 403 for a state-changing request a browser sent from a page of another origin. Requests
 * without an Origin header (curl, scripts, kubelet) pass: only browsers add it, and a
 * browser adds it to every POST.
 */
export function crossOriginRefusal(req: IncomingMessage): Refusal | undefined {
  if (SAFE_METHODS.has(req.method ?? "GET")) return undefined;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  let originHost: string | undefined;
  try {
    originHost = new URL(origin).host;
  } catch {
    // "null" (a sandboxed page or a file) and anything unparsable: not this server.
  }
  if (originHost !== undefined && originHost === req.headers.host) return undefined;
  return {
    status: 403,
    message: `refused: a ${req.method} from the page at ${origin} (only pages of this admin server, or clients without an Origin header, may send one)\n`,
  };
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Checks `Authorization: Bearer <token>` in constant time. */
export class TokenCheck {
  private readonly expected: Buffer;
  constructor(token: string) {
    this.expected = digest(token);
  }

  refusal(req: IncomingMessage): Refusal | undefined {
    const header = req.headers.authorization ?? "";
    const m = /^Bearer +(\S+)\s*$/i.exec(header);
    if (m && timingSafeEqual(digest(m[1]!), this.expected)) return undefined;
    return {
      status: 401,
      message: m
        ? "the admin token given is wrong\n"
        : "this admin server needs its token: send Authorization: Bearer <admin.token>\n",
      headers: { "www-authenticate": 'Bearer realm="lintel admin"' },
    };
  }
}
