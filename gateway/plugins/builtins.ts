// The built-in kinds. Adding a kind is one module plus one line here.

import { dirStorage } from "../acme/dir-storage.js";
import { execDnsProvider } from "../acme/exec-dns.js";
import { kubernetesStorage } from "../acme/kubernetes-storage.js";
import { redisStorage } from "../acme/redis-storage.js";
import { CERT_SOURCES } from "../cert-sources/index.js";
import { FAILURE_ACCRUALS } from "../client/accrual/kinds.js";
import { LOAD_BALANCERS } from "../client/balancers/index.js";
import { headerPathIdentifier } from "../identifiers/header-path.js";
import { headerTokenIdentifier } from "../identifiers/header-token.js";
import { headerUriPathIdentifier } from "../identifiers/header-uri-path.js";
import { ingressIdentifier } from "../identifiers/ingress.js";
import { methodAndHostIdentifier } from "../identifiers/method-and-host.js";
import { pathIdentifier } from "../identifiers/path.js";
import { staticIdentifier } from "../identifiers/static.js";
import { defaultInterpreter } from "../interpreters/default.js";
import { fsInterpreter } from "../interpreters/fs.js";
import { k8sConfigMapInterpreter } from "../interpreters/k8s-configmap.js";
import { EDGE_LAYERS } from "../layers/index.js";
import { fsNamer } from "../namers/fs.js";
import { k8sNamer } from "../namers/k8s.js";
import { k8sExternalNamer } from "../namers/k8s-external.js";
import { rewriteNamer } from "../namers/rewrite.js";
import { BACKOFFS } from "../policy/backoffs.js";
import { RESPONSE_CLASSIFIERS } from "../policy/classifiers.js";
import { GRPC_CLASSIFIERS } from "../policy/grpc-classifiers.js";
import { acmeChallengeLayer } from "../routing/server-stack/acme-challenge.js";
import { admissionLayer } from "../routing/server-stack/admission.js";
import { callDepthLayer } from "../routing/server-stack/call-depth.js";
import { connectTargetLayer } from "../routing/server-stack/connect-target.js";
import { httpsRedirectLayer } from "../routing/server-stack/https-redirect.js";
import { requestChecksLayer } from "../routing/server-stack/request-checks.js";
import { prometheusTelemeter } from "../telemeters/prometheus.js";
import { recentRequestsTelemeter } from "../telemeters/recent-requests.js";
import { TRACING_TELEMETERS } from "../telemeters/tracing-kinds.js";
import { k8sDaemonsetTransformer } from "../transformers/k8s-daemonset.js";
import { k8sLocalnodeTransformer } from "../transformers/k8s-localnode.js";
import { localhostTransformer } from "../transformers/localhost.js";
import { portTransformer } from "../transformers/port.js";
import { constTransformer, replaceTransformer } from "../transformers/replace.js";
import { specificHostTransformer } from "../transformers/specific-host.js";
import { type AnyPlugin, Registry } from "./registry.js";

export const BUILTIN_PLUGINS: readonly AnyPlugin[] = [
  headerTokenIdentifier,
  methodAndHostIdentifier,
  pathIdentifier,
  headerPathIdentifier,
  headerUriPathIdentifier,
  staticIdentifier,
  ingressIdentifier,
  fsNamer,
  k8sNamer,
  k8sExternalNamer,
  rewriteNamer,
  portTransformer,
  localhostTransformer,
  specificHostTransformer,
  replaceTransformer,
  constTransformer,
  k8sDaemonsetTransformer,
  k8sLocalnodeTransformer,
  defaultInterpreter,
  fsInterpreter,
  k8sConfigMapInterpreter,
  dirStorage,
  redisStorage,
  kubernetesStorage,
  execDnsProvider,
  ...LOAD_BALANCERS,
  ...FAILURE_ACCRUALS,
  ...BACKOFFS,
  ...RESPONSE_CLASSIFIERS,
  ...GRPC_CLASSIFIERS,
  prometheusTelemeter,
  recentRequestsTelemeter,
  ...TRACING_TELEMETERS,
  ...CERT_SOURCES,
  acmeChallengeLayer,
  httpsRedirectLayer,
  requestChecksLayer,
  callDepthLayer,
  connectTargetLayer,
  admissionLayer,
  ...EDGE_LAYERS,
];

/** A registry holding the built-in kinds. */
export function builtinRegistry(): Registry {
  const r = new Registry();
  for (const p of BUILTIN_PLUGINS) r.register(p);
  return r;
}
