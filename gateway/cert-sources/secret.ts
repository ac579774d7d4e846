// `secret`: a Kubernetes TLS Secret named `namespace/name`, watched through the shared
// Kubernetes client. Like a file, it must exist and be valid at startup.

import { nonEmptyString, object, refine, req, show } from "../config/schema.js";
import { namedSecretCertificates } from "../k8s/secret-certificates.js";
import { definePlugin } from "../plugins/registry.js";

/** A Kubernetes object as `namespace/name`. */
const objectRef = refine(nonEmptyString("a Secret as namespace/name"), (s) =>
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(s)
    ? undefined
    : `expected a Secret as namespace/name, got ${show(s)}`,
);

export const secretCertSource = definePlugin({
  category: "certSource",
  kind: "secret",
  schema: object({ secret: req(objectRef) }),
  create: (config, ctx) => ({
    kind: "live",
    source: namedSecretCertificates(ctx.kube(), config.secret),
  }),
});
