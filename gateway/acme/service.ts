// Every ACME block of a config, run in the control thread: one manager per TLS server
// with an `acme` block (storages shared when two blocks name the same one), the answers
// to challenges for every plain-HTTP and TLS listener, the admin server's view, and the
// metrics. Workers ask it for HTTP-01 answers by message.

import { readFileSync } from "node:fs";
import type { Agent } from "node:https";
import { caAgent, httpGet } from "../../tls/acme/http-get.js";
import { type AcmeEvents, AcmeManager, type AcmeNameStatus } from "../../tls/acme/manager.js";
import { OnDemandPolicy } from "../../tls/acme/on-demand.js";
import type { AcmeStorage } from "../../tls/acme/storage.js";
import type { PemPair } from "../../tls/live-source.js";
import type { Clock } from "../clock.js";
import type { AcmeConfig } from "../config/acme-schema.js";
import type { KubeApi, KubeApiRef } from "../k8s/api.js";
import type { Logger } from "../log.js";
import type { Engine } from "../server/listener.js";
import type { Registry } from "../telemetry/index.js";

export interface AcmeServiceOptions {
  readonly log: Logger;
  readonly clock: Clock;
  readonly random: () => number;
  readonly kube: (ref?: KubeApiRef) => KubeApi;
  readonly metrics: Registry;
  /** Every acme block of the config (their CA trust is one agent for the process). */
  readonly blocks: readonly AcmeConfig[];
}

/** What the admin server shows of one manager. */
export interface AcmeManagerView {
  readonly server: string;
  readonly directory: string;
  readonly storage: string;
  readonly names: readonly AcmeNameStatus[];
}

export class AcmeService {
  private readonly managers: { server: string; directory: string; manager: AcmeManager }[] = [];
  private readonly storages = new Map<string, AcmeStorage>();
  private readonly agent: Agent;
  private readonly events: AcmeEvents;

  constructor(private readonly o: AcmeServiceOptions) {
    const trust = [...new Set(o.blocks.flatMap((b) => b.trustCerts))];
    this.agent = caAgent(
      trust.length > 0 ? trust.map((f) => readFileSync(f, "utf8")).join("\n") : undefined,
    );
    const scope = o.metrics.scope({ flat: "acme", prom: "acme", labels: [] });
    this.events = {
      order: (kind, ok) => scope.counter(`orders/${kind}/${ok ? "success" : "failure"}`).n++,
      challengeFailed: (type) => scope.counter(`challenge_failures/${type}`).n++,
      onDemand: (outcome) => scope.counter(`on_demand/${outcome}`).n++,
    };
  }

  get used(): boolean {
    return this.managers.length > 0;
  }

  /** The manager of one server's `acme` block; reads its names' certificates from storage. */
  async manager(acme: AcmeConfig, engine: Engine, server: string): Promise<AcmeManager> {
    const log = this.o.log.child({ component: "acme", server });
    const storage = this.storage(acme, log);
    const ctx = { log, clock: this.o.clock, random: this.o.random, kube: this.o.kube };
    const dns = acme.dnsProvider?.plugin.create(acme.dnsProvider.config, ctx);
    const challenges = acme.challenges ?? [
      "http-01" as const,
      ...(engine !== "uws" ? (["tls-alpn-01"] as const) : []),
      ...(dns ? (["dns-01"] as const) : []),
    ];
    const od = acme.onDemand;
    const manager = new AcmeManager({
      directoryUrl: acme.directory,
      email: acme.email,
      eab: acme.externalAccountBinding && {
        kid: acme.externalAccountBinding.kid,
        hmacKey: hmacKey(acme.externalAccountBinding),
      },
      keyType: acme.keyType,
      challenges,
      dns,
      storage,
      names: acme.names,
      onDemand: od && new OnDemandPolicy(od, httpGet(this.agent, 5000), this.o.clock),
      agent: this.agent,
      lockTtlMs: acme.lockTtlMs,
      retryMinMs: acme.retryMinMs,
      checkIntervalMs: acme.checkIntervalMs,
      clock: this.o.clock,
      random: this.o.random,
      log: (level, message, fields) => log[level](message, fields),
      events: this.events,
    });
    await manager.load();
    this.managers.push({ server, directory: acme.directory, manager });
    return manager;
  }

  /** Starts ordering and renewing (once the listeners that answer challenges are up). */
  start(): void {
    for (const m of this.managers) m.manager.start();
  }

  /** The key authorization for an HTTP-01 token, from whichever manager presented it. */
  async httpAnswer(token: string): Promise<string | undefined> {
    for (const m of this.managers) {
      const a = await m.manager.answers.httpAnswer(token).catch(() => undefined);
      if (a !== undefined) return a;
    }
    return undefined;
  }

  /** The TLS-ALPN-01 certificate for a name being validated, if any. */
  async alpnAnswer(name: string): Promise<PemPair | undefined> {
    for (const m of this.managers) {
      const a = await m.manager.answers.alpnAnswer(name).catch(() => undefined);
      if (a !== undefined) return a;
    }
    return undefined;
  }

  status(): AcmeManagerView[] {
    return this.managers.map((m) => ({
      server: m.server,
      directory: m.directory,
      storage: m.manager.storageDescription,
      names: m.manager.status(),
    }));
  }

  async close(): Promise<void> {
    for (const m of this.managers) m.manager.close();
    await Promise.all([...this.storages.values()].map((s) => s.close?.()));
    this.agent.destroy();
  }

  /** One storage per distinct storage block, shared by the managers that name it. */
  private storage(acme: AcmeConfig, log: Logger): AcmeStorage {
    const s = acme.storage!;
    const key = `${s.kind} ${JSON.stringify(s.config)}`;
    let storage = this.storages.get(key);
    if (!storage) {
      storage = s.plugin.create(s.config, {
        log,
        clock: this.o.clock,
        random: this.o.random,
        kube: this.o.kube,
      });
      this.storages.set(key, storage);
    }
    return storage;
  }
}

/** The EAB HMAC key, read from where the config says (never from the config itself). */
function hmacKey(e: NonNullable<AcmeConfig["externalAccountBinding"]>): string {
  if (e.hmacKeyEnv !== undefined) {
    const v = process.env[e.hmacKeyEnv];
    if (!v)
      throw new Error(
        `externalAccountBinding: the environment variable ${e.hmacKeyEnv} is not set`,
      );
    return v.trim();
  }
  try {
    return readFileSync(e.hmacKeyFile!, "utf8").trim();
  } catch (err) {
    throw new Error(
      `externalAccountBinding: cannot read ${e.hmacKeyFile} (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}
