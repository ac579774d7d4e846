// /admin/clients.json: every client (bound id) of every router, its load balancer and each
// endpoint's state under failure accrual, as each thread that serves requests sees it.
// Each worker has its own clients, balancers and accrual, so each answers for itself:
// the control thread asks them when the page is asked for, and waits a bounded time.

import type { ClientCache } from "../client/client-cache.js";
import type { RouterClientsView } from "../client/client-view.js";

/** How long the admin server waits for a worker's clients before answering without them. */
export const WORKER_CLIENTS_TIMEOUT_MS = 1000;

/** One thread's clients: the control thread's (`worker: "control"`) or a worker's. */
export type ThreadClientsView =
  | { readonly worker: number | "control"; readonly routers: readonly RouterClientsView[] }
  /** A worker that could not answer (not serving, or too slow): why. */
  | { readonly worker: number; readonly error: string };

export interface ClientsView {
  /** When the page was made (ISO time). */
  readonly time: string;
  readonly threads: readonly ThreadClientsView[];
}

/** The clients of one router in this thread, sorted by bound id. */
export function routerClientsView(router: string, cache: ClientCache): RouterClientsView {
  const now = Date.now();
  const clients = [...cache.values()].map((c) => c.describe(now));
  clients.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { router, clients };
}

/** What the workers answer (the pool's part of the page). */
export interface WorkerClientsSource {
  clients(timeoutMs: number): Promise<ThreadClientsView[]>;
}

/**
 * The page: the control thread's clients when it serves requests itself (`own`), then
 * each worker's, each within WORKER_CLIENTS_TIMEOUT_MS.
 */
export async function clientsView(
  own: (() => readonly RouterClientsView[]) | undefined,
  workers: WorkerClientsSource | undefined,
): Promise<ClientsView> {
  const fromWorkers = workers ? workers.clients(WORKER_CLIENTS_TIMEOUT_MS) : [];
  const threads: ThreadClientsView[] = own ? [{ worker: "control", routers: own() }] : [];
  threads.push(...(await fromWorkers));
  return { time: new Date().toISOString(), threads };
}
