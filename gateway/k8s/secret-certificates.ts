// Certificates from Kubernetes Secrets (type kubernetes.io/tls) for a TLS listener: a
// Secret named in the config, or every Secret the served Ingresses name in spec.tls (the
// `secret` and `ingressSecrets` kinds, gateway/cert-sources/). Each is a live source for
// the listener's certificate store (tls/live-source.ts); the store checks them like files
// and keeps the last good one when a Secret goes bad.

import type { LivePemSource, PemPair } from "../../tls/live-source.js";
import { type IngressClassChoice, servesIngress } from "../identifiers/ingress-rules.js";
import type { KubeApi, KubeWatch } from "./api.js";
import { Ingresses, type IngressView, Secrets, type SecretView } from "./resources.js";

const TLS_TYPE = "kubernetes.io/tls";

/** A Secret's pair, or what is wrong with it. */
function pairOf(secret: SecretView | undefined): PemPair | string {
  if (!secret) return "the Secret does not exist";
  if (secret.type !== TLS_TYPE) return `the Secret's type is ${secret.type}, not ${TLS_TYPE}`;
  if (!secret.tlsCrt || !secret.tlsKey) return "the Secret has no tls.crt or no tls.key";
  return { certPem: secret.tlsCrt, keyPem: secret.tlsKey };
}

/** A live source that also holds watch subscriptions, released by close(). */
export interface SecretCertificates extends LivePemSource {
  close(): void;
}

/** Tells listeners of any change of the watches (subscribed from the start, so startup can wait for them). */
function changeFeed(watches: readonly KubeWatch<unknown>[]) {
  const listeners = new Set<() => void>();
  const stops = watches.map((w) =>
    w.subscribe(() => {
      for (const l of [...listeners]) l();
    }),
  );
  return {
    onChange(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      for (const stop of stops) stop();
      listeners.clear();
    },
  };
}

/** `namespace/name` of a Secret; required: a problem with it at startup stops lintel. */
export function namedSecretCertificates(api: KubeApi, ref: string): SecretCertificates {
  const [namespace, name] = ref.split("/") as [string, string];
  const secrets = api.watch(Secrets, { namespace, fieldSelector: `metadata.name=${name}` });
  const origin = `Secret ${namespace}/${name}`;
  const feed = changeFeed([secrets]);
  return {
    description: origin,
    required: true,
    current: () =>
      new Map([
        [origin, secrets.synced ? pairOf(secrets.items.get(ref)) : "not listed from the API yet"],
      ]),
    ...feed,
  };
}

/** The Secrets named in spec.tls of the Ingresses a router serves (in `namespace`, or all). */
export function ingressSecretCertificates(
  api: KubeApi,
  choice: IngressClassChoice,
  namespace: string | undefined,
): SecretCertificates {
  const ingresses = api.watch(Ingresses, namespace === undefined ? {} : { namespace });
  const secrets = api.watch(Secrets, {
    ...(namespace === undefined ? {} : { namespace }),
    fieldSelector: `type=${TLS_TYPE}`,
  });
  const feed = changeFeed([ingresses, secrets]);
  return {
    description: "the Secrets named by Ingress spec.tls",
    required: false,
    current: () => {
      const out = new Map<string, PemPair | string>();
      for (const ing of [...ingresses.items.values()].sort(byAge)) {
        if (!servesIngress(ing, choice)) continue;
        for (const t of ing.tls) {
          if (!t.secretName) continue;
          const key = `${ing.namespace}/${t.secretName}`;
          const origin = `Secret ${key}`;
          if (out.has(origin)) continue;
          const pair = pairOf(secrets.items.get(key));
          out.set(
            origin,
            typeof pair === "string"
              ? `${pair} (named by Ingress ${ing.namespace}/${ing.name})`
              : pair,
          );
        }
      }
      return out;
    },
    ...feed,
  };
}

/** Older Ingresses first: when two name Secrets for one host, the older one's is listed first and wins. */
function byAge(a: IngressView, b: IngressView): number {
  return a.created < b.created
    ? -1
    : a.created > b.created
      ? 1
      : `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}`
        ? -1
        : 1;
}
