// The `kubernetes` ACME storage: each value in an Opaque Secret and each lock in a
// coordination.k8s.io Lease, all in one namespace, so replicas share ACME state through
// the API they already talk to, with nothing else to run.

// RBAC it needs in that namespace (a Role bound to lintel's service account):
//   - apiGroups: [""]                   resources: [secrets]  verbs: [get, list, create, update, delete]
//   - apiGroups: [coordination.k8s.io]  resources: [leases]   verbs: [get, create, update]
// (Leases are never deleted: a released one is kept with no holder, see LeaseLock.release.)

import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { type AcmeLock, type AcmeStorage, checkKey } from "../../tls/acme/storage.js";
import type { Clock } from "../clock.js";
import { def, nonEmptyString, object, opt, port, refine } from "../config/schema.js";
import { KubeConflictError, type KubeWriter } from "../k8s/api.js";
import { type KubeObject, Leases, Secrets } from "../k8s/resources.js";
import { definePlugin } from "../plugins/registry.js";

const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Label: which storage (its prefix) an object belongs to; list() selects on it. */
const STORAGE_LABEL = "lintel.dev/acme-storage";
/** Annotation: the key a Secret holds (its name is only the key's hash). */
const KEY_ANNOTATION = "lintel.dev/acme-key";
/** Annotation: the lock a Lease is, for people reading it. */
const LOCK_ANNOTATION = "lintel.dev/acme-lock";

/**
 * A DNS label (RFC 1123): what a namespace must be. A prefix that is one keeps every
 * derived name a valid Secret and Lease name (at most 63 + 26 characters) and a valid
 * label value.
 */
function dnsLabel(expected: string) {
  return refine(nonEmptyString(expected), (v) =>
    v.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v)
      ? undefined
      : `expected ${expected}: up to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (got "${v}")`,
  );
}

/** Writes of one value before a store gives up on conflicts (client-go's RetryOnConflict tries 5). */
const STORE_ATTEMPTS = 5;

/** The first 20 hex digits (80 bits) of SHA-256: names that are fixed, short and DNS-safe. */
const shortHash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 20);

/** Milliseconds as a MicroTime: the API takes exactly six fractional digits. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, "000Z");

type Json = Record<string, unknown>;
const obj = (v: unknown): Json =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {};

interface Place {
  readonly namespace: string;
  readonly prefix: string;
}

export class KubernetesStorage implements AcmeStorage {
  readonly description: string;
  private readonly labels: Record<string, string>;

  constructor(
    private readonly writer: KubeWriter,
    private readonly clock: Clock,
    private readonly place: Place,
    server: string,
  ) {
    this.description = `kubernetes Secrets and Leases in ${place.namespace} (prefix ${place.prefix}) at ${server}`;
    this.labels = { [MANAGED_BY_LABEL]: "lintel", [STORAGE_LABEL]: place.prefix };
  }

  /** The Secret holding `key`. */
  private secretName(key: string): string {
    return `${this.place.prefix}-${shortHash(key)}`;
  }

  /** The Lease that is lock `name`. */
  private leaseName(name: string): string {
    return `${this.place.prefix}-lock-${shortHash(name)}`;
  }

  async load(key: string): Promise<Buffer | undefined> {
    const { name, current } = await this.read(key);
    if (!current) return undefined;
    const value = obj(current.data).value;
    if (typeof value !== "string")
      throw new Error(
        `Secret ${this.place.namespace}/${name} holds ACME key "${key}" but has no data.value; delete it so that lintel writes it again`,
      );
    return Buffer.from(value, "base64");
  }

  async store(key: string, value: Buffer): Promise<void> {
    // Create, or replace at the version read. A conflict means someone wrote the Secret
    // in between (another replica storing the key, or someone labelling it): read again
    // and retry. Every conflict is another writer's success, so with up to
    // STORE_ATTEMPTS writers at once every store lands, the last one winning.
    for (let attempt = 1; ; attempt++) {
      const { name, current } = await this.read(key);
      const data = { value: value.toString("base64") };
      try {
        if (current) {
          // At current's resourceVersion, keeping what others added (labels, annotations).
          const meta = current.metadata;
          await this.writer.replace(Secrets, this.place.namespace, name, {
            ...current,
            metadata: {
              ...meta,
              labels: { ...meta?.labels, ...this.labels },
              annotations: { ...meta?.annotations, [KEY_ANNOTATION]: key },
            },
            data,
          });
        } else {
          await this.writer.create(Secrets, this.place.namespace, {
            metadata: {
              name,
              namespace: this.place.namespace,
              labels: this.labels,
              annotations: { [KEY_ANNOTATION]: key },
            },
            type: "Opaque",
            data,
          });
        }
        return;
      } catch (e) {
        if (!(e instanceof KubeConflictError) || attempt === STORE_ATTEMPTS) throw e;
      }
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.writer.delete(Secrets, this.place.namespace, this.secretName(key));
  }

  async list(prefix: string): Promise<string[]> {
    checkKey(prefix);
    const selector = Object.entries(this.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const secrets = await this.writer.list(Secrets, this.place.namespace, selector);
    return secrets
      .map((s) => s.metadata?.annotations?.[KEY_ANNOTATION])
      .filter((k): k is string => typeof k === "string" && k.startsWith(`${prefix}/`));
  }

  /**
   * Creates the Lease, or takes over one that is free (released) or expired by replacing
   * it at the version that was read. Either write fails with a 409 when another replica
   * wrote first (created it, took it, or its holder renewed it), so of replicas racing
   * for it exactly one wins. Expiry is judged by this replica's clock against the
   * holder's renewTime: clocks must agree to well within the TTL.
   */
  async tryLock(name: string, ttlMs: number): Promise<AcmeLock | undefined> {
    const leaseName = this.leaseName(name);
    const now = this.clock.now();
    const spec = {
      // Fresh for every acquisition: no handle, not even this replica's, matches another's.
      holderIdentity: `${hostname()}-${process.pid}-${randomBytes(6).toString("hex")}`,
      leaseDurationSeconds: Math.max(1, Math.ceil(ttlMs / 1000)),
      acquireTime: microTime(now),
      renewTime: microTime(now),
    };
    const current = await this.writer.get(Leases, this.place.namespace, leaseName);
    try {
      if (!current) {
        await this.writer.create(Leases, this.place.namespace, {
          metadata: {
            name: leaseName,
            namespace: this.place.namespace,
            labels: this.labels,
            annotations: { [LOCK_ANNOTATION]: name },
          },
          spec: { ...spec, leaseTransitions: 0 },
        });
      } else {
        if (heldAt(current, now)) return undefined;
        const transitions = obj(current.spec).leaseTransitions;
        await this.writer.replace(Leases, this.place.namespace, leaseName, {
          ...current,
          spec: {
            ...spec,
            leaseTransitions: (typeof transitions === "number" ? transitions : 0) + 1,
          },
        });
      }
    } catch (e) {
      if (e instanceof KubeConflictError) return undefined;
      throw e;
    }
    return new LeaseLock(
      this.writer,
      this.clock,
      this.place.namespace,
      leaseName,
      spec.holderIdentity,
    );
  }

  /** The Secret for `key` as it is now, checked to be that key's. */
  private async read(key: string): Promise<{ name: string; current: KubeObject | undefined }> {
    checkKey(key);
    const name = this.secretName(key);
    const current = await this.writer.get(Secrets, this.place.namespace, name);
    const holds = current?.metadata?.annotations?.[KEY_ANNOTATION];
    if (current && holds !== key)
      throw new Error(
        `Secret ${this.place.namespace}/${name} is where ACME key "${key}" goes, but it is not that key's (annotation ${KEY_ANNOTATION}: ${JSON.stringify(holds)}); something else uses the prefix "${this.place.prefix}": choose another prefix, or delete the Secret`,
      );
    return { name, current };
  }
}

/** True when a holder has the Lease and its renewTime + leaseDurationSeconds is after `now`. */
function heldAt(lease: KubeObject, now: number): boolean {
  const spec = obj(lease.spec);
  if (typeof spec.holderIdentity !== "string" || spec.holderIdentity === "") return false;
  const renewed = Date.parse(String(spec.renewTime ?? spec.acquireTime));
  const seconds = typeof spec.leaseDurationSeconds === "number" ? spec.leaseDurationSeconds : 0;
  return Number.isFinite(renewed) && now < renewed + seconds * 1000;
}

/** A held Lease: every write is conditioned on the version in which this token holds it. */
class LeaseLock implements AcmeLock {
  constructor(
    private readonly writer: KubeWriter,
    private readonly clock: Clock,
    private readonly namespace: string,
    private readonly name: string,
    private readonly token: string,
  ) {}

  async refresh(): Promise<boolean> {
    const current = await this.ours();
    if (!current) return false;
    try {
      await this.writer.replace(Leases, this.namespace, this.name, {
        ...current,
        spec: { ...obj(current.spec), renewTime: microTime(this.clock.now()) },
      });
      return true;
    } catch (e) {
      if (e instanceof KubeConflictError) return false;
      throw e;
    }
  }

  /**
   * Clears holderIdentity with a replace at the version read, rather than deleting: the
   * replace is conditional, so it cannot clear a holder that took over after the read
   * (a plain DELETE could), and the Lease stays for the next holder to take over.
   */
  async release(): Promise<void> {
    const current = await this.ours();
    if (!current) return;
    const { holderIdentity: _released, ...spec } = obj(current.spec);
    try {
      await this.writer.replace(Leases, this.namespace, this.name, { ...current, spec });
    } catch (e) {
      // Written since the read: taken over (no longer ours to release), or renewed by a
      // refresh at the same moment (then it expires by itself after its TTL).
      if (!(e instanceof KubeConflictError)) throw e;
    }
  }

  /** The Lease, when this token still holds it. */
  private async ours(): Promise<KubeObject | undefined> {
    const current = await this.writer.get(Leases, this.namespace, this.name);
    return current && obj(current.spec).holderIdentity === this.token ? current : undefined;
  }
}

export const kubernetesStorage = definePlugin({
  category: "acmeStorage",
  kind: "kubernetes",
  schema: object({
    namespace: def(dnsLabel("a namespace"), "lintel"),
    /** Secret and Lease names start with it; it also labels them. */
    prefix: def(dnsLabel("a Secret and Lease name prefix"), "lintel-acme"),
    /** A kubectl proxy (Linkerd style); without host and port, the `kubernetes` block says. */
    host: opt(nonEmptyString("a host name or IP address")),
    port: opt(port()),
  }),
  create(config, ctx) {
    const api = ctx.kube({ host: config.host, port: config.port });
    if (!api.writer)
      throw new Error(
        "the kubernetes ACME storage writes Secrets and Leases, which only lintel's main thread can do",
      );
    return new KubernetesStorage(api.writer, ctx.clock, config, api.description);
  },
});
