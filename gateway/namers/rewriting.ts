// The rewriting namers of Linkerd's `/$/` space: pure functions from the rest of a path
// to a new path (bound further through the dtab), or neg when the path does not fit.
//   io.buoyant.http.domainToPathPfx/<pfx>/<a.b.c>            → /<pfx>/c/b/a
//   io.buoyant.http.subdomainOfPfx/<domain>/<pfx>/<x.domain> → /<pfx>/<x>
//   io.buoyant.hostportPfx/<pfx>/<host:port>                 → /<pfx>/<host>/<port>
//   io.buoyant.porthostPfx/<pfx>/<host:port>                 → /<pfx>/<port>/<host>
// plus the unprefixed and method variants Linkerd ships. The residual is kept.

import { Path } from "../naming/index.js";

export type Rewrite = (path: Path) => Path | undefined;

// Coarse host matching (DNS names, IPv4, IPv6 without brackets), as Linkerd does.
const HOST = /^[A-Za-z0-9.:-]+$/;
const METHOD = /^[A-Z]+$/;
// The port part of host:port is a number or a DNS label (a named port, as in Kubernetes).
const PORT_LABEL = /^[a-z0-9][-a-z0-9]*[a-z0-9]?$/;

function hostColonPort(s: string): [string, string] | undefined {
  const parts = s.split(":");
  if (parts.length !== 2) return undefined;
  const [host, port] = parts as [string, string];
  if (host === "" || port.length > 63 || !PORT_LABEL.test(port)) return undefined;
  return [host, port];
}

function subdomain(domain: string, host: string): string | undefined {
  const sfx = `.${domain}`;
  if (!host.endsWith(sfx)) return undefined;
  const sub = host.slice(0, -sfx.length);
  return sub.length > 0 ? sub : undefined;
}

const seg = (p: Path, i: number) => p.segments[i];

function withRest(segments: string[], path: Path, consumed: number): Path {
  return Path.fromTrusted(segments).concat(path.drop(consumed));
}

export const REWRITING_NAMERS: Readonly<Record<string, Rewrite>> = {
  "io.buoyant.http.domainToPathPfx": (p) => {
    const [pfx, host] = [seg(p, 0), seg(p, 1)];
    if (pfx === undefined || host === undefined || !HOST.test(host)) return undefined;
    return withRest(
      [
        pfx,
        ...host
          .split(".")
          .filter((s) => s !== "")
          .reverse(),
      ],
      p,
      2,
    );
  },
  "io.buoyant.http.domainToPath": (p) => {
    const host = seg(p, 0);
    if (host === undefined || !HOST.test(host)) return undefined;
    return withRest(
      host
        .split(".")
        .filter((s) => s !== "")
        .reverse(),
      p,
      1,
    );
  },
  "io.buoyant.http.subdomainOfPfx": (p) => {
    const [domain, pfx, host] = [seg(p, 0), seg(p, 1), seg(p, 2)];
    if (domain === undefined || pfx === undefined || host === undefined) return undefined;
    if (!HOST.test(domain) || !HOST.test(host)) return undefined;
    const sub = subdomain(domain, host);
    return sub === undefined ? undefined : withRest([pfx, sub], p, 3);
  },
  "io.buoyant.http.subdomainOf": (p) => {
    const [domain, host] = [seg(p, 0), seg(p, 1)];
    if (domain === undefined || host === undefined || !HOST.test(domain) || !HOST.test(host))
      return undefined;
    const sub = subdomain(domain, host);
    return sub === undefined ? undefined : withRest([sub], p, 2);
  },
  "io.buoyant.http.anyHostPfx": (p) => {
    const [pfx, host] = [seg(p, 0), seg(p, 1)];
    if (pfx === undefined || host === undefined || !HOST.test(host)) return undefined;
    return withRest([pfx], p, 2);
  },
  "io.buoyant.http.anyHost": (p) => {
    const host = seg(p, 0);
    return host !== undefined && HOST.test(host) ? p.drop(1) : undefined;
  },
  "io.buoyant.http.anyMethodPfx": (p) => {
    const [pfx, method] = [seg(p, 0), seg(p, 1)];
    if (pfx === undefined || method === undefined || !METHOD.test(method)) return undefined;
    return withRest([pfx], p, 2);
  },
  "io.buoyant.http.anyMethod": (p) => {
    const method = seg(p, 0);
    return method !== undefined && METHOD.test(method) ? p.drop(1) : undefined;
  },
  "io.buoyant.hostportPfx": (p) => {
    const [pfx, hp] = [seg(p, 0), seg(p, 1)];
    const split = hp === undefined ? undefined : hostColonPort(hp);
    if (pfx === undefined || split === undefined) return undefined;
    return withRest([pfx, split[0], split[1]], p, 2);
  },
  "io.buoyant.porthostPfx": (p) => {
    const [pfx, hp] = [seg(p, 0), seg(p, 1)];
    const split = hp === undefined ? undefined : hostColonPort(hp);
    if (pfx === undefined || split === undefined) return undefined;
    return withRest([pfx, split[1], split[0]], p, 2);
  },
};
