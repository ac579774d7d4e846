// The ACME protocol through acme-client (JWS, orders, authorizations, CSRs), loaded only
// when a config uses ACME. acme-client reports a CA's error as a message alone; lintel
// also needs the problem type and Retry-After (rate limits, "try again later"), so the
// answers of each order are watched through the HTTP client acme-client uses.

import { AsyncLocalStorage } from "node:async_hooks";
import type { Agent } from "node:https";
import { retryAfterMs } from "./http-get.js";

export type AcmeModule = typeof import("acme-client");

/** The last error answer the CA gave during one operation. */
export interface CaProblem {
  readonly status: number;
  /** e.g. urn:ietf:params:acme:error:rateLimited */
  readonly type: string | undefined;
  readonly retryAfterMs: number | undefined;
}

/** How long one request to the CA may take. */
const CA_REQUEST_TIMEOUT_MS = 15_000;

const problems = new AsyncLocalStorage<{ last: CaProblem | undefined }>();
let loaded: Promise<AcmeModule> | undefined;

/**
 * acme-client, set up once per process: its HTTP client (one for the whole process)
 * reports error answers to the operation in progress, and trusts the agent of the
 * latest acme setup (`useAgent`).
 */
export function loadAcme(agent: Agent): Promise<AcmeModule> {
  loaded ??= import("acme-client").then((m) => {
    const acme = ((m as { default?: AcmeModule }).default ?? m) as AcmeModule;
    acme.axios.interceptors.response.use((res) => {
      const slot = problems.getStore();
      if (!slot) return res;
      // The last answer counts: a bad nonce retried with success is no problem.
      const data = res.data as { type?: unknown } | undefined;
      slot.last =
        res.status < 400
          ? undefined
          : {
              status: res.status,
              type: typeof data?.type === "string" ? data.type : undefined,
              retryAfterMs: retryAfterMs(
                res.headers["retry-after"] as string | undefined,
                Date.now(),
              ),
            };
      return res;
    });
    return acme;
  });
  return loaded.then((acme) => {
    // Every manager of a process shares the trust of the CAs its config names.
    acme.axios.defaults.httpsAgent = agent;
    // A CA that does not answer is a failure to retry later, not an order that hangs; and
    // the manager retries with its own backoff (acme-client's would wait up to Retry-After,
    // an hour for a rate limit, inside one request).
    acme.axios.defaults.timeout = CA_REQUEST_TIMEOUT_MS;
    (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number } })
      .acmeSettings!.retryMaxAttempts = 0;
    return acme;
  });
}

/** An error from an ACME operation, with what the CA said when it said something. */
export class AcmeOperationError extends Error {
  constructor(
    message: string,
    readonly problem: CaProblem | undefined,
  ) {
    super(message);
    this.name = "AcmeOperationError";
  }

  get rateLimited(): boolean {
    return this.problem?.type === "urn:ietf:params:acme:error:rateLimited";
  }
}

/** Runs `fn`, turning its failure into an AcmeOperationError carrying the CA's problem. */
export async function withProblems<T>(fn: () => Promise<T>): Promise<T> {
  const slot: { last: CaProblem | undefined } = { last: undefined };
  try {
    return await problems.run(slot, fn);
  } catch (e) {
    throw new AcmeOperationError((e as Error).message, slot.last);
  }
}
