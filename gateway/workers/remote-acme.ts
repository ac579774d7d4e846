// A worker's ACME HTTP-01 answers: the control thread keeps the challenges (and reads
// the shared store), so a worker's plain-HTTP server asks it for each token.

import type { LintelConfig } from "../config/config-schema.js";
import type { FromWorker } from "./protocol.js";

/** How long a worker waits for the control thread's answer before it says 404. */
const ANSWER_TIMEOUT_MS = 5000;

/** True when some server of the config orders certificates from ACME. */
export function usesAcme(config: LintelConfig): boolean {
  return config.routers.some((r) => r.servers.some((s) => s.tls?.acme !== undefined));
}

export class RemoteAcmeAnswers {
  private readonly waiting = new Map<number, (answer: string | undefined) => void>();
  private nextId = 1;

  constructor(private readonly post: (m: FromWorker) => void) {}

  answer(token: string): Promise<string | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.answered(id, undefined), ANSWER_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
      this.post({ type: "acme-http", id, token });
    });
  }

  answered(id: number, answer: string | undefined): void {
    const done = this.waiting.get(id);
    this.waiting.delete(id);
    done?.(answer);
  }
}
