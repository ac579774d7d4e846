// `ingressSecrets`: the Secrets named in spec.tls of the Ingresses the router serves,
// watched through the shared Kubernetes client. The class and namespace default to the
// router's io.l5d.ingress identifier's, so the certificates follow the routes.

import { boolean, def, type Infer, nonEmptyString, object, opt } from "../config/schema.js";
import { ingressIdentifier } from "../identifiers/ingress.js";
import { ingressSecretCertificates } from "../k8s/secret-certificates.js";
import { definePlugin } from "../plugins/registry.js";

export const ingressSecretsCertSource = definePlugin({
  category: "certSource",
  kind: "ingressSecrets",
  schema: object({
    ingressSecrets: def(
      object({
        namespace: opt(nonEmptyString("a namespace")),
        ingressClassAnnotation: opt(nonEmptyString("an ingress class name")),
        claimUnclassed: opt(boolean()),
      }),
      {},
    ),
  }),
  create(config, ctx) {
    const identifier = ctx.identifiers.find((p) => p.plugin === ingressIdentifier)?.config as
      | Infer<typeof ingressIdentifier.schema>
      | undefined;
    const o = config.ingressSecrets;
    const source = ingressSecretCertificates(
      ctx.kube(),
      {
        ingressClass: o.ingressClassAnnotation ?? identifier?.ingressClassAnnotation ?? "linkerd",
        claimUnclassed: o.claimUnclassed ?? identifier?.claimUnclassed ?? true,
      },
      o.namespace ?? identifier?.namespace,
    );
    return { kind: "live", source };
  },
});
