// Certificates from an ACME CA for the names a listener serves: ordered when missing,
// renewed in the CA's window (ARI) or when a third of their lifetime is left, kept in a
// shared storage so that every replica serves them, and ordered by one replica at a
// time (the storage's lock). Failures back off (shared by the replicas, so none loops on
// a failing name) and never take a certificate away: what serves keeps serving.
// The manager is a live certificate source for the listeners' stores.

import { createHash, X509Certificate } from "node:crypto";
import type { Agent } from "node:https";
import type { TlsLog } from "../errors.js";
import type { LivePemSource, PemPair } from "../live-source.js";
import { type AcmeModule, AcmeOperationError, loadAcme, withProblems } from "./acme-protocol.js";
import { ariCertId, fetchRenewalInfo } from "./ari.js";
import { ChallengeAnswers, type ChallengeType } from "./challenges.js";
import type { AcmeClock } from "./clock.js";
import type { DnsProvider } from "./dns-provider.js";
import { type HttpGet, httpGet } from "./http-get.js";
import { type KeyType, newPrivateKey } from "./keys.js";
import type { OnDemandPolicy } from "./on-demand.js";
import { renewalTime, retryDelay } from "./schedule.js";
import { type AcmeLock, type AcmeStorage, nameSegment } from "./storage.js";

export interface AcmeManagerOptions {
  readonly directoryUrl: string;
  readonly email: string | undefined;
  readonly eab: { readonly kid: string; readonly hmacKey: string } | undefined;
  readonly keyType: KeyType;
  /** In order of preference; wildcard names use dns-01 whatever the order. */
  readonly challenges: readonly ChallengeType[];
  readonly dns: DnsProvider | undefined;
  readonly storage: AcmeStorage;
  /** Names kept with certificates from the start. */
  readonly names: readonly string[];
  readonly onDemand: OnDemandPolicy | undefined;
  /** HTTPS to the CA: the system roots plus any configured CA. */
  readonly agent: Agent;
  readonly lockTtlMs: number;
  /** The first wait after a failed order; it doubles per failure up to a day. */
  readonly retryMinMs: number;
  /** How often each name's state is read again from storage (other replicas' renewals). */
  readonly checkIntervalMs: number;
  readonly clock: AcmeClock;
  readonly random: () => number;
  readonly log: TlsLog;
  readonly events?: AcmeEvents;
}

/** What the manager counts (the gateway turns these into metrics). */
export interface AcmeEvents {
  order(kind: "new" | "renewal", ok: boolean): void;
  challengeFailed(type: ChallengeType): void;
  onDemand(outcome: "issued" | "refused"): void;
}

/** What the admin server shows of a name. */
export interface AcmeNameStatus {
  readonly name: string;
  readonly onDemand: boolean;
  readonly state: "valid" | "missing" | "ordering" | "failing";
  readonly notBefore: string | undefined;
  readonly notAfter: string | undefined;
  readonly issuer: string | undefined;
  readonly renewAt: string | undefined;
  readonly failures: number;
  readonly nextTryAt: string | undefined;
  readonly lastError: { readonly at: string; readonly message: string } | undefined;
}

/** A certificate as stored: one JSON value, so a reader never sees a cert with another key. */
interface StoredCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly issuedAt: number;
  /** The CA's renewal window when it gave one, and when to ask again. */
  readonly ari?: { readonly start: number; readonly end: number; readonly nextCheckAt: number };
}

/** A name's failures as stored, shared by the replicas: nobody tries before nextTryAt. */
interface StoredFailure {
  readonly failures: number;
  readonly nextTryAt: number;
  readonly at: number;
  readonly message: string;
}

interface Held {
  readonly stored: StoredCert;
  readonly pem: PemPair;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly issuer: string;
  readonly renewAt: number;
}

interface NameState {
  readonly name: string;
  readonly onDemand: boolean;
  held: Held | undefined;
  failure: StoredFailure | undefined;
  /** The storage could not be read or locked at the last pass (cleared by the next good one). */
  storageError: { readonly at: number; readonly message: string } | undefined;
  /** At the last pass another replica held the name's lock (it is ordering or renewing it). */
  lockedElsewhere: boolean;
  /** An on-demand name given up (refused by a cap): nothing more is done for it. */
  dropped: boolean;
  busy: Promise<void> | undefined;
  /** On-demand handshakes waiting for another replica's order: one storage poll for them all. */
  polling: Promise<void> | undefined;
  ordering: boolean;
  timer: { unref?(): void } | undefined;
  /** When the last "expires soon" warning was logged. */
  warnedAt: number;
}

/** While another replica orders a name, look for its result this often. */
const WAIT_FOR_OTHER_MS = 3000;
/** While a handshake waits for another replica's order, look in storage this often. */
const HANDSHAKE_POLL_MS = 250;
/** While another replica makes the ACME account key, look for it this often. */
const ACCOUNT_WAIT_MS = 200;
/** Pebble, Let's Encrypt: validation takes seconds; poll the CA at this pace. */
const CA_POLL = { backoffAttempts: 15, backoffMin: 100, backoffMax: 3000 };

/** Whether the ACME client has learnt its account's URL from the CA. */
function hasAccountUrl(client: { getAccountUrl(): string }): boolean {
  try {
    client.getAccountUrl();
    return true;
  } catch {
    return false;
  }
}

function storageId(directoryUrl: string): string {
  const u = new URL(directoryUrl);
  const hash = createHash("sha256").update(directoryUrl).digest("hex").slice(0, 8);
  return `${u.hostname.toLowerCase().replace(/[^a-z0-9.-]/g, "-")}-${hash}`;
}

export class AcmeManager implements LivePemSource {
  readonly description: string;
  readonly required = false;
  readonly answers: ChallengeAnswers;
  private readonly states = new Map<string, NameState>();
  private readonly listeners = new Set<() => void>();
  private readonly id: string;
  private readonly get: HttpGet;
  private client:
    | Promise<{ acme: AcmeModule; client: InstanceType<AcmeModule["Client"]> }>
    | undefined;
  private renewalInfoUrl: Promise<string | undefined> | undefined;
  private closed = false;

  constructor(private readonly o: AcmeManagerOptions) {
    this.id = storageId(o.directoryUrl);
    this.description = `ACME ${o.directoryUrl}`;
    this.answers = new ChallengeAnswers(o.storage);
    this.get = httpGet(o.agent, 10_000);
  }

  /**
   * Reads the configured names' certificates from storage (so a listener starts with
   * them); a storage that cannot be read now is logged and read again later.
   */
  async load(): Promise<void> {
    await Promise.all(
      this.o.names.map((n) => {
        const st = this.state(n.toLowerCase(), false);
        return this.read(st).catch((e: Error) => {
          this.storageFailed(st, "read", e);
          this.o.log("warn", "ACME storage cannot be read; will try again", {
            name: n,
            storage: this.o.storage.description,
            error: e.message,
          });
        });
      }),
    );
  }

  /** The challenges it may use, in order of preference. */
  get challenges(): readonly ChallengeType[] {
    return this.o.challenges;
  }

  get storageDescription(): string {
    return this.o.storage.description;
  }

  /** Starts keeping the configured names: orders what is missing, renews what is due. */
  start(): void {
    for (const st of this.states.values()) void this.maintain(st);
  }

  close(): void {
    this.closed = true;
    for (const st of this.states.values()) if (st.timer) this.o.clock.clearTimeout(st.timer);
    this.listeners.clear();
  }

  // ---- LivePemSource ------------------------------------------------------------------

  current(): ReadonlyMap<string, PemPair> {
    const out = new Map<string, PemPair>();
    for (const st of this.states.values()) if (st.held) out.set(`ACME ${st.name}`, st.held.pem);
    return out;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- on-demand ------------------------------------------------------------------------

  /**
   * A certificate for `name` at a handshake: from memory or storage, or ordered now when
   * on-demand TLS allows it. Resolves within `onDemand.waitMs`; undefined means the
   * handshake gets the default certificate.
   */
  async ensure(serverName: string): Promise<PemPair | undefined> {
    const policy = this.o.onDemand;
    const name = serverName.toLowerCase();
    const known = this.states.get(name);
    if (known?.held && known.held.notAfter > this.o.clock.now()) return known.held.pem;
    if (!policy) return undefined;
    const deadline = this.o.clock.now() + policy.config.waitMs;
    const decision = await policy.permits(name);
    if (!decision.ok) {
      this.o.events?.onDemand("refused");
      this.o.log("warn", "on-demand certificate refused", { name, reason: decision.reason });
      return undefined;
    }
    const st = this.state(name, true);
    await this.until(this.maintain(st), deadline);
    // Another replica holds the name's lock (it is ordering the name): its certificate
    // appears in storage, looked for until the handshake's bound.
    while (!st.held && st.lockedElsewhere && !st.dropped && !this.closed) {
      if (this.o.clock.now() >= deadline) break;
      await this.until(this.pollOther(st), deadline);
    }
    return st.held?.pem;
  }

  /** Waits for `p`, or until `deadline` (clock time), whichever comes first. */
  private async until(p: Promise<void>, deadline: number): Promise<void> {
    const left = deadline - this.o.clock.now();
    if (left <= 0) return;
    let timer: { unref?(): void } | undefined;
    await Promise.race([
      p,
      new Promise<void>((r) => {
        timer = this.o.clock.setTimeout(r, left);
      }),
    ]);
    if (timer) this.o.clock.clearTimeout(timer);
  }

  /**
   * One look in storage, shortly, for a name another replica orders (shared by every
   * handshake waiting for it): a pass, so that the name's lock is taken over should the
   * other replica give up or die.
   */
  private pollOther(st: NameState): Promise<void> {
    st.polling ??= new Promise<void>((r) => {
      this.o.clock.setTimeout(r, HANDSHAKE_POLL_MS).unref?.();
    })
      .then(() => this.maintain(st))
      .finally(() => {
        st.polling = undefined;
      });
    return st.polling;
  }

  // ---- status -----------------------------------------------------------------------------

  status(): AcmeNameStatus[] {
    const iso = (t: number | undefined) =>
      t === undefined ? undefined : new Date(t).toISOString();
    return [...this.states.values()].map((st) => {
      // What goes wrong now (the storage) before what went wrong at the last order.
      const last = st.storageError ?? st.failure;
      return {
        name: st.name,
        onDemand: st.onDemand,
        state: st.ordering
          ? "ordering"
          : st.failure || st.storageError
            ? "failing"
            : st.held
              ? "valid"
              : "missing",
        notBefore: iso(st.held?.notBefore),
        notAfter: iso(st.held?.notAfter),
        issuer: st.held?.issuer,
        renewAt: iso(st.held?.renewAt),
        failures: st.failure?.failures ?? 0,
        nextTryAt: iso(st.failure?.nextTryAt),
        lastError: last && { at: iso(last.at)!, message: last.message },
      };
    });
  }

  // ---- the per-name cycle -------------------------------------------------------------------

  private state(name: string, onDemand: boolean): NameState {
    let st = this.states.get(name);
    if (!st) {
      st = {
        name,
        onDemand,
        held: undefined,
        failure: undefined,
        storageError: undefined,
        lockedElsewhere: false,
        dropped: false,
        busy: undefined,
        polling: undefined,
        ordering: false,
        timer: undefined,
        warnedAt: 0,
      };
      this.states.set(name, st);
    }
    return st;
  }

  private key(st: NameState, file: string): string {
    return `certs/${this.id}/${nameSegment(st.name)}/${file}`;
  }

  /** One pass for a name: read storage; order or renew when due and allowed; schedule the next. */
  private maintain(st: NameState): Promise<void> {
    if (st.busy) return st.busy;
    st.busy = this.pass(st)
      .then(() => this.warnIfExpiring(st))
      .catch((e: Error) =>
        this.o.log("error", "ACME: unexpected failure", {
          name: st.name,
          error: e.stack ?? e.message,
        }),
      )
      .finally(() => {
        st.busy = undefined;
        this.schedule(st);
      });
    return st.busy;
  }

  /** Reads the name's stored certificate; false (reported, logged) when storage cannot be read. */
  private async readStored(st: NameState): Promise<boolean> {
    try {
      await this.read(st);
      return true;
    } catch (e) {
      this.storageFailed(st, "read", e as Error);
      this.o.log("warn", "ACME storage cannot be read; what serves keeps serving", {
        name: st.name,
        storage: this.o.storage.description,
        error: (e as Error).message,
      });
      return false;
    }
  }

  private async pass(st: NameState): Promise<void> {
    if (this.closed || st.dropped) return;
    st.lockedElsewhere = false;
    if (!(await this.readStored(st))) return;
    st.storageError = undefined;
    const now = this.o.clock.now();
    if (!this.due(st, now) || (st.failure && st.failure.nextTryAt > now)) return;
    let lock: AcmeLock | undefined;
    try {
      lock = await this.o.storage.tryLock(
        `issue-${this.id}-${nameSegment(st.name)}`,
        this.o.lockTtlMs,
      );
    } catch (e) {
      this.storageFailed(st, "locked", e as Error);
      this.o.log("warn", "ACME storage cannot be locked; will try again", {
        name: st.name,
        storage: this.o.storage.description,
        error: (e as Error).message,
      });
      return;
    }
    // Another replica is on it: its result appears in storage.
    if (!lock) {
      st.lockedElsewhere = true;
      return;
    }
    const keepAlive = setInterval(() => void lock.refresh(), Math.max(1000, this.o.lockTtlMs / 3));
    keepAlive.unref();
    try {
      // It may have finished just before the lock was free.
      if (!(await this.readStored(st))) return;
      const again = this.o.clock.now();
      if (!this.due(st, again) || (st.failure && st.failure.nextTryAt > again)) return;
      await this.obtain(st);
    } finally {
      clearInterval(keepAlive);
      await lock.release().catch(() => {});
    }
  }

  /** Keeps a storage failure as the name's last error (the admin server shows it). */
  private storageFailed(st: NameState, what: "read" | "locked", e: Error): void {
    st.storageError = {
      at: this.o.clock.now(),
      message: `the ACME storage (${this.o.storage.description}) cannot be ${what}: ${e.message}`,
    };
  }

  /**
   * Warns, at most hourly, about a certificate past its renewal time with less than a
   * sixth of its lifetime left (renewals keep failing, or another replica's do).
   */
  private warnIfExpiring(st: NameState): void {
    const held = st.held;
    const now = this.o.clock.now();
    if (!held || now - st.warnedAt < 3600_000) return;
    if (now < held.notAfter - (held.notAfter - held.notBefore) / 6) return;
    st.warnedAt = now;
    this.o.log("warn", "ACME certificate expires soon and is not renewed yet", {
      name: st.name,
      notAfter: new Date(held.notAfter).toISOString(),
      hoursLeft: Math.round((held.notAfter - now) / 3600_000),
      lastError: st.failure?.message ?? "",
    });
  }

  private due(st: NameState, now: number): boolean {
    return st.held === undefined || now >= st.held.renewAt || now >= st.held.notAfter;
  }

  /** Reads the name's certificate and failure state from storage into memory. */
  private async read(st: NameState): Promise<void> {
    const [certRaw, failRaw] = await Promise.all([
      this.o.storage.load(this.key(st, "certificate.json")),
      this.o.storage.load(this.key(st, "failure.json")),
    ]);
    st.failure = failRaw ? (JSON.parse(failRaw.toString("utf8")) as StoredFailure) : undefined;
    if (!certRaw) return;
    const stored = JSON.parse(certRaw.toString("utf8")) as StoredCert;
    if (
      st.held &&
      st.held.stored.certPem === stored.certPem &&
      st.held.stored.ari?.nextCheckAt === stored.ari?.nextCheckAt
    )
      return;
    const held = this.hold(stored);
    if (!held) return;
    const changed = st.held?.stored.certPem !== stored.certPem;
    st.held = held;
    if (changed) this.announce();
    await this.refreshAri(st);
  }

  private hold(stored: StoredCert): Held | undefined {
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(stored.certPem);
    } catch {
      return undefined;
    }
    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    const renewAt = renewalTime(
      { notBefore, notAfter },
      stored.ari,
      this.o.clock.now(),
      this.o.random,
    );
    return {
      stored,
      pem: { certPem: stored.certPem, keyPem: stored.keyPem },
      notBefore,
      notAfter,
      issuer: leaf.issuer.split("\n").join(", "),
      renewAt,
    };
  }

  /** The CA's renewalInfo URL, when its directory has one (read once). */
  private renewalInfo(): Promise<string | undefined> {
    this.renewalInfoUrl ??= this.get(this.o.directoryUrl)
      .then((r) => {
        const dir = JSON.parse(r.body) as { renewalInfo?: unknown };
        return typeof dir.renewalInfo === "string" ? dir.renewalInfo : undefined;
      })
      .catch(() => {
        this.renewalInfoUrl = undefined;
        return undefined;
      });
    return this.renewalInfoUrl;
  }

  /** Asks the CA's renewal information (when it offers it) once the last answer is stale. */
  private async refreshAri(st: NameState): Promise<void> {
    const held = st.held;
    if (!held || (held.stored.ari && held.stored.ari.nextCheckAt > this.o.clock.now())) return;
    const url = await this.renewalInfo();
    const certId = url && ariCertId(held.stored.certPem);
    if (!url || !certId) return;
    try {
      const info = await fetchRenewalInfo(this.get, url, certId, this.o.clock.now());
      const stored: StoredCert = {
        ...held.stored,
        ari: { ...info.window, nextCheckAt: info.nextCheckAt },
      };
      st.held = this.hold(stored);
      await this.o.storage.store(
        this.key(st, "certificate.json"),
        Buffer.from(JSON.stringify(stored)),
      );
    } catch (e) {
      this.o.log(
        "warn",
        "ACME renewal information unavailable; renewing by the certificate's dates",
        {
          name: st.name,
          error: (e as Error).message,
        },
      );
    }
  }

  /** Orders a certificate for the name (the lock is held) and stores it, or records the failure. */
  private async obtain(st: NameState): Promise<void> {
    const renewal = st.held !== undefined;
    const onDemand = st.onDemand && !renewal ? this.o.onDemand : undefined;
    if (onDemand && !onDemand.begin()) {
      // Given up, not failed: no backoff and no order in the background that no handshake
      // asked for; the next handshake for the name asks (and counts against the caps) again.
      this.drop(st);
      this.o.events?.onDemand("refused");
      this.o.log(
        "warn",
        "on-demand certificate refused: too many orders (onDemand.maxPerMinute / maxConcurrent)",
        {
          name: st.name,
        },
      );
      return;
    }
    st.ordering = true;
    const started = this.o.clock.now();
    try {
      const { certPem, keyPem } = await this.order(st);
      const stored: StoredCert = { certPem, keyPem, issuedAt: this.o.clock.now() };
      await this.o.storage.store(
        this.key(st, "certificate.json"),
        Buffer.from(JSON.stringify(stored)),
      );
      await this.o.storage.delete(this.key(st, "failure.json"));
      st.failure = undefined;
      st.held = this.hold(stored);
      this.o.events?.order(renewal ? "renewal" : "new", true);
      if (onDemand) this.o.events?.onDemand("issued");
      this.o.log("info", renewal ? "ACME certificate renewed" : "ACME certificate obtained", {
        name: st.name,
        notAfter: st.held ? new Date(st.held.notAfter).toISOString() : "",
        ms: this.o.clock.now() - started,
      });
      this.announce();
      await this.refreshAri(st);
    } catch (e) {
      const err =
        e instanceof AcmeOperationError
          ? e
          : new AcmeOperationError((e as Error).message, undefined);
      const failures = (st.failure?.failures ?? 0) + 1;
      const now = this.o.clock.now();
      const wait = retryDelay(
        failures,
        err.problem?.retryAfterMs ?? (err.rateLimited ? 3600_000 : undefined),
        this.o.random,
        this.o.retryMinMs,
      );
      // The CA may have forgotten the account (or refused it): make it again next time.
      if (/account/i.test(err.problem?.type ?? "") || /account/i.test(err.message))
        this.client = undefined;
      st.failure = { failures, nextTryAt: now + wait, at: now, message: err.message };
      this.o.events?.order(renewal ? "renewal" : "new", false);
      this.o.log(
        "error",
        renewal
          ? "ACME renewal failed; the current certificate keeps serving"
          : "ACME order failed",
        {
          name: st.name,
          error: err.message,
          caProblem: err.problem?.type ?? "",
          failures,
          retryInSecs: Math.round(wait / 1000),
        },
      );
      await this.o.storage
        .store(this.key(st, "failure.json"), Buffer.from(JSON.stringify(st.failure)))
        .catch(() => {});
    } finally {
      st.ordering = false;
      onDemand?.done();
    }
  }

  /** The ACME order itself: authorizations through the allowed challenges, then finalize. */
  private async order(st: NameState): Promise<PemPair> {
    const { acme, client } = await this.account();
    // A renewal says which certificate it replaces when the CA speaks ARI (RFC 9773 §5).
    const replaces =
      st.held && (await this.renewalInfo()) ? ariCertId(st.held.stored.certPem) : undefined;
    return withProblems(async () => {
      const order = await client.createOrder({
        identifiers: [{ type: "dns", value: st.name }],
        ...(replaces ? { replaces } : {}),
      } as Parameters<typeof client.createOrder>[0]);
      for (const authz of await client.getAuthorizations(order)) {
        if (authz.status === "valid") continue;
        const allowed = authz.wildcard ? (["dns-01"] as const) : this.o.challenges;
        const challenge = allowed
          .map((t) => authz.challenges.find((c) => c.type === t))
          .find((c) => c !== undefined);
        if (!challenge) {
          throw new Error(
            `the CA offers ${authz.challenges.map((c) => c.type).join(", ")} for ${authz.identifier.value}, and lintel may use ${allowed.join(", ")}${authz.wildcard ? " (wildcard names need dns-01)" : ""}`,
          );
        }
        const type = challenge.type as ChallengeType;
        const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
        const cleanup = await this.present(acme, authz, type, challenge.token, keyAuthorization);
        try {
          await client.completeChallenge(challenge);
          await client.waitForValidStatus(challenge);
        } catch (e) {
          this.o.events?.challengeFailed(type);
          throw new Error(
            `${type} validation of ${authz.identifier.value} failed: ${(e as Error).message}`,
          );
        } finally {
          await cleanup().catch((e: Error) =>
            this.o.log("warn", "ACME challenge cleanup failed", {
              name: st.name,
              type,
              error: e.message,
            }),
          );
        }
      }
      const keyPem = await newPrivateKey(this.o.keyType);
      const [, csr] = await acme.crypto.createCsr({ altNames: [st.name] }, keyPem);
      const finalized = await client.finalizeOrder(order, csr);
      const certPem = await client.getCertificate(finalized);
      return { certPem, keyPem };
    });
  }

  /** Makes a challenge answerable; returns its cleanup. */
  private async present(
    acme: AcmeModule,
    authz: { identifier: { value: string } },
    type: ChallengeType,
    token: string,
    keyAuthorization: string,
  ): Promise<() => Promise<void>> {
    const name = authz.identifier.value;
    switch (type) {
      case "http-01":
        await this.answers.presentHttp(token, keyAuthorization);
        return () => this.answers.cleanupHttp(token);
      case "tls-alpn-01": {
        const [key, cert] = await acme.crypto.createAlpnCertificate(
          authz as Parameters<AcmeModule["crypto"]["createAlpnCertificate"]>[0],
          keyAuthorization,
        );
        await this.answers.presentAlpn(name, { certPem: cert.toString(), keyPem: key.toString() });
        return () => this.answers.cleanupAlpn(name);
      }
      case "dns-01": {
        const dns = this.o.dns;
        if (!dns) throw new Error("dns-01 needs a dnsProvider");
        const fqdn = `_acme-challenge.${name}.`;
        await dns.present(fqdn, keyAuthorization);
        await new Promise<void>((r) => {
          this.o.clock.setTimeout(r, dns.propagationDelayMs);
        });
        return () => dns.cleanup(fqdn, keyAuthorization);
      }
    }
  }

  /** The ACME client with the account (made once, under the storage's lock, shared by replicas). */
  private account() {
    this.client ??= this.openAccount().catch((e: Error) => {
      this.client = undefined;
      throw e;
    });
    return this.client;
  }

  private async openAccount() {
    const acme = await loadAcme(this.o.agent);
    const keyName = `accounts/${this.id}/account-key.pem`;
    const key = (await this.o.storage.load(keyName)) ?? (await this.newAccountKey(keyName));
    const client = new acme.Client({
      directoryUrl: this.o.directoryUrl,
      accountKey: key,
      externalAccountBinding: this.o.eab,
      ...CA_POLL,
    });
    try {
      await withProblems(() =>
        client.createAccount({
          termsOfServiceAgreed: true,
          contact: this.o.email ? [`mailto:${this.o.email}`] : undefined,
        }),
      );
    } catch (e) {
      // The CA knew the key's account (another replica, or an earlier run, registered it):
      // acme-client then sends the terms again as an update, which a strict CA refuses
      // as an empty one. Fetching the account (POST-as-GET) is all it takes.
      if (!hasAccountUrl(client)) throw e;
      await withProblems(() => client.createAccount({ onlyReturnExisting: true })).catch(() => {
        throw e;
      });
    }
    return { acme, client };
  }

  /**
   * Makes the account key under the storage's lock; when another replica holds that lock,
   * waits (up to the lock's TTL) for the key it makes: the replicas starting together
   * share one account, and none counts the wait as a failed order.
   */
  private async newAccountKey(keyName: string): Promise<Buffer> {
    const until = this.o.clock.now() + this.o.lockTtlMs;
    for (;;) {
      const lock = await this.o.storage.tryLock(`account-${this.id}`, this.o.lockTtlMs);
      if (lock) {
        try {
          const key =
            (await this.o.storage.load(keyName)) ?? Buffer.from(await newPrivateKey("ec256"));
          await this.o.storage.store(keyName, key);
          return key;
        } finally {
          await lock.release().catch(() => {});
        }
      }
      if (this.closed || this.o.clock.now() > until)
        throw new AcmeOperationError(
          "another replica is creating the ACME account; will try again",
          undefined,
        );
      await new Promise<void>((r) => this.o.clock.setTimeout(r, ACCOUNT_WAIT_MS));
      const made = await this.o.storage.load(keyName);
      if (made) return made;
    }
  }

  /** Forgets an on-demand name: no more passes, and status() no longer lists it. */
  private drop(st: NameState): void {
    st.dropped = true;
    if (st.timer) this.o.clock.clearTimeout(st.timer);
    st.timer = undefined;
    if (this.states.get(st.name) === st) this.states.delete(st.name);
  }

  private schedule(st: NameState): void {
    if (this.closed || st.dropped) return;
    if (st.timer) this.o.clock.clearTimeout(st.timer);
    const now = this.o.clock.now();
    let at = now + this.o.checkIntervalMs * (0.9 + 0.2 * this.o.random());
    // The storage is away: look again after the first retry wait, not a check interval.
    if (st.storageError) at = Math.min(at, now + this.o.retryMinMs * (0.5 + 0.5 * this.o.random()));
    if (st.failure) at = Math.min(at, Math.max(st.failure.nextTryAt, now + 1000));
    else if (!st.held) at = now + WAIT_FOR_OTHER_MS * (0.5 + this.o.random());
    else if (st.held.renewAt > now) at = Math.min(at, st.held.renewAt);
    else at = now + WAIT_FOR_OTHER_MS * (0.5 + this.o.random());
    st.timer = this.o.clock.setTimeout(() => void this.maintain(st), at - now);
    st.timer.unref?.();
  }

  private announce(): void {
    for (const l of [...this.listeners]) l();
  }
}
