// One HTTP request to a running lintel's admin server (`--admin HOST:PORT`), for the
// commands that read it (certs, stat, tap): the answer's status and body, or an error that
// says which address did not answer and how to name another. The admin token (admin.token)
// comes from LINTEL_ADMIN_TOKEN, not a flag, so it stays out of the process list.

import { request } from "node:http";

export interface AdminReply {
  readonly status: number;
  readonly body: string;
}

/** What the admin server's address defaults to (admin.ip and admin.port's defaults). */
export const DEFAULT_ADMIN = "127.0.0.1:9990";

/** `--admin HOST:PORT`, as every command that reads a running lintel takes it. */
export const ADMIN_OPTION = { admin: { type: "string", short: "a" } } as const;

export function adminRequest(
  admin: string,
  method: string,
  path: string,
  opts: { readonly timeoutMs: number; readonly signal?: AbortSignal },
): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const token = process.env.LINTEL_ADMIN_TOKEN;
    const headers = token ? { authorization: `Bearer ${token}` } : undefined;
    const req = request(
      `http://${admin}${path}`,
      { method, headers, signal: opts.signal },
      (res) => {
        if (res.statusCode === 401) {
          res.resume();
          reject(
            new Error(
              `the admin server at ${admin} ${token ? "refused the token in LINTEL_ADMIN_TOKEN" : "needs its token (admin.token): set LINTEL_ADMIN_TOKEN"}`,
            ),
          );
          return;
        }
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.setTimeout(opts.timeoutMs, () =>
      req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)),
    );
    req.on("error", (e: NodeJS.ErrnoException) => {
      if (e.name === "AbortError") return reject(e);
      reject(
        new Error(
          `cannot reach the admin server at ${admin} (${e.code ?? e.message}): is lintel running, and is --admin HOST:PORT its admin address (admin.ip, admin.port)?`,
        ),
      );
    });
    req.end();
  });
}

/** An AbortSignal raised by Ctrl-C (SIGINT), and a function that stops listening for it. */
export function interruptSignal(): { readonly signal: AbortSignal; readonly release: () => void } {
  const c = new AbortController();
  const onSigint = () => c.abort();
  process.once("SIGINT", onSigint);
  return { signal: c.signal, release: () => process.off("SIGINT", onSigint) };
}
