// The routing micro-benchmark: identify + bind for many service names, in process, with the
// functions a router calls per request (its identifier, binding cache and service policies)
// over a real config of 1,000 dentries. Reports the time per request (median of several
// runs) and the caches' sizes and evictions, with the names within the binding cache and
// with more names than it holds.
//
//   npm run -s build && node dist/loadtest/micro-routing.js [--runs 5] [--requests 200000]
//     [--case within|over]     one case only (e.g. under --cpu-prof)

import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { systemClock } from "../gateway/clock.js";
import { getHeader } from "../gateway/http/headers.js";
import type { RequestView } from "../gateway/identifiers/identifier.js";
import { silentLogger } from "../gateway/log.js";
import { Dtab } from "../gateway/naming/index.js";
import { BindingCache } from "../gateway/routing/binding-cache.js";
import { buildNaming } from "../gateway/routing/naming-setup.js";
import { PolicyKinds } from "../gateway/routing/policy-kinds.js";
import { ServicePolicies } from "../gateway/routing/service-policy.js";
import { loadLintelConfig } from "../gateway/setup.js";
import { Registry, RouterMetrics } from "../gateway/telemetry/index.js";

const DENTRIES = 1000;

interface Case {
  readonly id: string;
  readonly title: string;
  /** Distinct service names sent in rotation. */
  readonly names: number;
  /** bindingCache.paths */
  readonly cacheSize: number;
}

const CASES: readonly Case[] = [
  { id: "within", title: "names within the cache", names: 10_000, cacheSize: 10_000 },
  { id: "over", title: "names over the cache", names: 50_000, cacheSize: 10_000 },
];

/** `/svc/app-N => /$/inet/10.0.x.y/8080` for N < DENTRIES: IP literals bind without DNS. */
function dtab(): string {
  const lines: string[] = [];
  for (let n = 0; n < DENTRIES; n++) {
    lines.push(`      /svc/app-${n} => /$/inet/10.0.${n >> 8}.${n & 255}/8080;`);
  }
  return lines.join("\n");
}

function configText(cacheSize: number): string {
  return `routers:
  - protocol: http
    label: bench
    identifier: {kind: io.l5d.path, segments: 2}
    bindingCache: {paths: ${cacheSize}}
    dtab: |
${dtab()}
`;
}

/** A request as identifiers see it (the router's View over a parsed request). */
class BenchRequest implements RequestView {
  readonly method = "GET";
  readonly httpVersion = "1.1";
  constructor(
    readonly url: string,
    private readonly headers: readonly string[],
  ) {}
  header(name: string): string | undefined {
    return getHeader(this.headers, name);
  }
}

/** `/app-N/vK/…`: N over the dentries, K over the versions, so every name is distinct. */
function requests(names: number): BenchRequest[] {
  const out: BenchRequest[] = [];
  for (let i = 0; i < names; i++) {
    const app = i % DENTRIES;
    const version = Math.floor(i / DENTRIES);
    out.push(new BenchRequest(`/app-${app}/v${version}/items?page=1`, ["host", "bench"]));
  }
  return out;
}

async function runCase(c: Case, runs: number, perRun: number): Promise<void> {
  const loaded = await loadLintelConfig("/micro-routing.yaml", { text: configText(c.cacheSize) });
  if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.message).join("\n"));
  const config = loaded.config;
  const r = config.routers[0]!;
  const naming = buildNaming(config, { log: silentLogger });
  const routerNaming = naming.routers.get("bench")!;
  const metrics = new RouterMetrics(new Registry(), "bench");
  const bindings = new BindingCache(
    routerNaming.interpreter,
    r.bindingCache.paths,
    r.bindingCache.idleTtlSecs * 1000,
    metrics.bindcache,
  );
  const services = new ServicePolicies(
    r.service,
    new PolicyKinds({ clock: systemClock, random: Math.random, kube: noKube, log: silentLogger }),
    metrics,
    systemClock,
  );
  const reqs = requests(c.names);
  const identifier = routerNaming.identifier;

  // What Router.identify and Router.bind do per request, up to choosing a branch.
  let bound = 0;
  const serve = (req: BenchRequest) => {
    const id = identifier.identify(req);
    if (!id.ok) throw new Error(`unidentified: ${id.reason}`);
    const entry = bindings.get(Dtab.empty, "", id.dst);
    entry.service ??= services.for(id.dst);
    if (entry.state.status !== "ok") throw new Error(`${id.dst.show} did not bind`);
    bound++;
  };

  // Warm-up: every name once, then a run's worth, so the JIT and the caches settle.
  for (const req of reqs) serve(req);
  for (let i = 0; i < perRun; i++) serve(reqs[i % reqs.length]!);

  /** ns per request, per run. */
  const results: number[] = [];
  let next = 0;
  const before = { misses: metrics.bindcache.misses.n, evicts: metrics.bindcache.evicts.n };
  for (let run = 0; run < runs; run++) {
    const t0 = performance.now();
    for (let i = 0; i < perRun; i++) {
      serve(reqs[next]!);
      if (++next === reqs.length) next = 0;
    }
    const ms = performance.now() - t0;
    results.push((ms * 1e6) / perRun);
  }
  const sorted = results.sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const measured = runs * perRun;
  const misses = metrics.bindcache.misses.n - before.misses;
  const evicts = metrics.bindcache.evicts.n - before.evicts;
  console.log(`\n${c.title}: ${c.names} names, ${DENTRIES} dentries, cache of ${c.cacheSize}`);
  console.log(
    `  identify + bind: median ${(median / 1000).toFixed(2)} µs/request (runs: ${sorted
      .map((n) => (n / 1000).toFixed(2))
      .join(", ")} µs), ${measured} requests measured`,
  );
  console.log(
    `  binding cache: ${bindings.size} entries; while measured ${misses} misses (${(
      (100 * misses) / measured
    ).toFixed(
      1,
    )}%), ${evicts} evictions; since start ${metrics.bindcache.misses.n} misses, ${metrics.bindcache.evicts.n} evictions`,
  );
  console.log(`  heap used: ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`);
  if (bound === 0) throw new Error("nothing bound");
  bindings.close();
  naming.close();
}

const noKube = () => {
  throw new Error("the micro-benchmark has no Kubernetes API");
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      requests: { type: "string", default: "200000" },
      case: { type: "string" },
    },
  });
  const runs = Number(values.runs);
  const perRun = Number(values.requests);
  if (!(runs >= 1 && perRun >= 1)) throw new Error("--runs and --requests must be at least 1");
  console.log(`routing micro-benchmark: ${runs} runs of ${perRun} requests per case`);
  const cases = CASES.filter((c) => values.case === undefined || c.id === values.case);
  if (cases.length === 0)
    throw new Error(`--case must be one of ${CASES.map((c) => c.id).join(", ")}`);
  for (const c of cases) await runCase(c, runs, perRun);
}

await main();
