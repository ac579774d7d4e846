// The routing table of io.l5d.ingress: built from the Ingresses this router serves, it
// maps a request's (host, path) to a backend's service name. Pure: no I/O, no clock.
//
// Which Ingresses: `spec.ingressClassName` equal to the router's class; with no
// ingressClassName, the legacy annotation `kubernetes.io/ingress.class` equal to it; with
// neither, served when `claimUnclassed` (Linkerd 1 served Ingresses without a class).
//
// Host: the request's Host header lower-cased, its port removed (`[v6]:port` → `v6`).
// Rules are tried by host in this order, falling through to the next step whenever no
// path matches: the rules of the exact host; the rules of the wildcard host
// (`*.example.com` covers exactly one more label: `a.example.com`, not `example.com` nor
// `a.b.example.com`); the host-less rules; the default backend.
//
// Path: the request target without its query, matched by the rule's pathType:
//   Exact                   equal, case-sensitive;
//   Prefix                  element-wise by `/`: `/foo` matches `/foo`, `/foo/` and
//                           `/foo/bar`, not `/foobar`; a trailing `/` in the rule is
//                           ignored and `/` matches every path;
//   ImplementationSpecific  Linkerd 1's rule: a regular expression that must match the
//                           whole path (one that does not compile is skipped, and said so
//                           in the table's `problems`).
// A rule without a path matches every path. When several match, the longest rule path
// wins (a Prefix counted without its trailing `/`, so `/` and a missing path count 0); at
// equal length Exact beats Prefix beats ImplementationSpecific; then the older Ingress
// (creationTimestamp, then namespace/name), then the earlier rule — as other controllers do.
//
// Default backend: `spec.defaultBackend` of the oldest served Ingress that has one, unless
// `ignoreDefaultBackends`. Resource backends (not Services) are not routable, so paths
// with one are left out. The service name is dstPrefix ++ /<namespace>/<port>/<service>,
// the port being the backend's port number or name (`/svc/default/http/web`).

import type { IngressBackendView, IngressView, PathType } from "../k8s/resources.js";
import { Path } from "../naming/index.js";
import { type Identification, identified } from "./identifier.js";

/** Which Ingresses a router serves. */
export interface IngressClassChoice {
  /** The class this router serves (Linkerd's `ingressClassAnnotation`). */
  readonly ingressClass: string;
  /** Serve Ingresses that name no class at all. */
  readonly claimUnclassed: boolean;
}

export interface IngressTableOptions extends IngressClassChoice {
  readonly dstPrefix: Path;
  readonly ignoreDefaultBackends: boolean;
}

/** Where a matched request goes. */
export interface IngressRoute {
  /** The Ingress the rule came from, `namespace/name`. */
  readonly ingress: string;
  readonly dst: Path;
  /** What identify() answers for this route, made once when the table is built. */
  readonly identification: Identification;
}

export function servesIngress(ing: IngressView, choice: IngressClassChoice): boolean {
  if (ing.className !== undefined) return ing.className === choice.ingressClass;
  if (ing.annotationClass !== undefined) return ing.annotationClass === choice.ingressClass;
  return choice.claimUnclassed;
}

/** The host a Host header names, lower-cased and without its port; undefined when absent. */
export function requestHost(header: string | undefined): string | undefined {
  if (header === undefined || header === "") return undefined;
  let host = header;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const end = host.indexOf("]");
    host = host.slice(1, end < 0 ? host.length : end);
  } else {
    const colon = host.indexOf(":");
    // More than one colon: a bare IPv6 address, which has no port to remove.
    if (colon >= 0 && host.indexOf(":", colon + 1) < 0) host = host.slice(0, colon);
  }
  return host === "" ? undefined : host.toLowerCase();
}

/** The path of an origin-form request target (the query removed). */
export function requestPath(url: string): string {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  return path === "" ? "/" : path;
}

/** How a rule path is compared with the request path ("any": the rule has no path). */
type Match = "any" | "exact" | "prefix" | "regex";

// At equal length, the rule type that wins first.
const TYPE_RANK: Readonly<Record<PathType, number>> = {
  Exact: 0,
  Prefix: 1,
  ImplementationSpecific: 2,
};

interface PathRule {
  readonly match: Match;
  /** Exact: the path; Prefix: the path without trailing `/` ("" for `/`). */
  readonly text: string;
  readonly regex: RegExp | undefined;
  /** The rule path's length for "longest wins". */
  readonly length: number;
  readonly rank: number;
  /** Position among all rules, Ingresses oldest first: the last tie-breaker. */
  readonly order: number;
  readonly route: IngressRoute;
}

function pathMatches(rule: PathRule, path: string): boolean {
  switch (rule.match) {
    case "any":
      return true;
    case "exact":
      return path === rule.text;
    case "prefix": {
      const p = rule.text;
      if (p === "") return true;
      return path.startsWith(p) && (path.length === p.length || path.charCodeAt(p.length) === 0x2f);
    }
    case "regex":
      return rule.regex!.test(path);
  }
}

/** The first rule of a best-first list that matches `path`. */
function bestRoute(rules: readonly PathRule[] | undefined, path: string): IngressRoute | undefined {
  if (rules === undefined) return undefined;
  for (const rule of rules) if (pathMatches(rule, path)) return rule.route;
  return undefined;
}

export class IngressTable {
  constructor(
    /** Rules by exact host, each list best first. */
    private readonly exact: ReadonlyMap<string, readonly PathRule[]>,
    /** Rules of `*.<parent>` hosts by parent domain, each list best first. */
    private readonly wildcard: ReadonlyMap<string, readonly PathRule[]>,
    private readonly anyHost: readonly PathRule[],
    readonly defaultRoute: IngressRoute | undefined,
    /** How many Ingresses the table was built from (those served). */
    readonly ingresses: number,
    /** Rules left out, one line each, for the log. */
    readonly problems: readonly string[],
  ) {}

  /** The route for a request's host (from requestHost) and path (from requestPath). */
  match(host: string | undefined, path: string): IngressRoute | undefined {
    if (host !== undefined) {
      const found = bestRoute(this.exact.get(host), path);
      if (found !== undefined) return found;
      if (this.wildcard.size > 0) {
        const dot = host.indexOf(".");
        if (dot > 0) {
          const wild = bestRoute(this.wildcard.get(host.slice(dot + 1)), path);
          if (wild !== undefined) return wild;
        }
      }
    }
    return bestRoute(this.anyHost, path) ?? this.defaultRoute;
  }
}

function olderFirst(a: IngressView, b: IngressView): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  const ka = `${a.namespace}/${a.name}`;
  const kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function bestFirst(a: PathRule, b: PathRule): number {
  return b.length - a.length || a.rank - b.rank || a.order - b.order;
}

export function buildIngressTable(
  ingresses: Iterable<IngressView>,
  opts: IngressTableOptions,
): IngressTable {
  const served = [...ingresses].filter((i) => servesIngress(i, opts)).sort(olderFirst);
  const exact = new Map<string, PathRule[]>();
  const wildcard = new Map<string, PathRule[]>();
  const anyHost: PathRule[] = [];
  const problems: string[] = [];
  let defaultRoute: IngressRoute | undefined;
  let order = 0;

  for (const ing of served) {
    const key = `${ing.namespace}/${ing.name}`;
    if (defaultRoute === undefined && !opts.ignoreDefaultBackends && ing.defaultBackend) {
      defaultRoute = backendRoute(opts.dstPrefix, ing, key, ing.defaultBackend);
    }
    for (const rule of ing.rules) {
      const list = hostRules(rule.host, exact, wildcard, anyHost);
      for (const p of rule.paths) {
        if (p.backend === undefined) continue;
        const route = backendRoute(opts.dstPrefix, ing, key, p.backend);
        if (route === undefined) continue;
        const base = { rank: TYPE_RANK[p.pathType], order: order++, route };
        if (p.path === undefined) {
          list.push({ ...base, match: "any", text: "", regex: undefined, length: 0 });
        } else if (p.pathType === "Exact") {
          list.push({
            ...base,
            match: "exact",
            text: p.path,
            regex: undefined,
            length: p.path.length,
          });
        } else if (p.pathType === "Prefix") {
          const text = p.path.replace(/\/+$/, "");
          list.push({ ...base, match: "prefix", text, regex: undefined, length: text.length });
        } else {
          const regex = compileWhole(p.path);
          if (typeof regex === "string") {
            problems.push(
              `Ingress ${key}: path ${JSON.stringify(p.path)} (ImplementationSpecific) is not ` +
                `a valid regular expression, so the rule is skipped: ${regex}`,
            );
            continue;
          }
          list.push({ ...base, match: "regex", text: p.path, regex, length: p.path.length });
        }
      }
    }
  }
  for (const rules of exact.values()) rules.sort(bestFirst);
  for (const rules of wildcard.values()) rules.sort(bestFirst);
  anyHost.sort(bestFirst);
  return new IngressTable(exact, wildcard, anyHost, defaultRoute, served.length, problems);
}

/** The list a rule's paths go into, by the rule's host. */
function hostRules(
  host: string | undefined,
  exact: Map<string, PathRule[]>,
  wildcard: Map<string, PathRule[]>,
  anyHost: PathRule[],
): PathRule[] {
  if (host === undefined) return anyHost;
  const lower = host.toLowerCase();
  const [map, key] = lower.startsWith("*.") ? [wildcard, lower.slice(2)] : [exact, lower];
  let list = map.get(key);
  if (list === undefined) {
    list = [];
    map.set(key, list);
  }
  return list;
}

/** The regular expression matching the whole path, or why it does not compile. */
function compileWhole(source: string): RegExp | string {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function backendRoute(
  dstPrefix: Path,
  ing: IngressView,
  key: string,
  backend: IngressBackendView,
): IngressRoute | undefined {
  const port = String(backend.port);
  // The API never sends these empty; a hand-made object could, and Path refuses them.
  if (ing.namespace === "" || port === "" || backend.service === "") return undefined;
  const dst = dstPrefix.concat(Path.of(ing.namespace, port, backend.service));
  return { ingress: key, dst, identification: identified(dst) };
}
