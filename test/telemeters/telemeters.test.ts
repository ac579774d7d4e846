// A thread's telemeters: one observer for the routers (none when nothing observes),
// sampling before a summary is made, a failing telemeter kept off the request path, the
// admin routes and their checks; io.l5d.recentRequests' sampling and its merged page.

import { describe, expect, it } from "vitest";
import { systemClock } from "../../gateway/clock.js";
import type { PluginConfig } from "../../gateway/config/plugin-schema.js";
import { object } from "../../gateway/config/schema.js";
import { silentLogger } from "../../gateway/log.js";
import { definePlugin } from "../../gateway/plugins/registry.js";
import type { PluginContext } from "../../gateway/plugins/types.js";
import {
  recentRequestsPage,
  recentRequestsTelemeter,
} from "../../gateway/telemeters/recent-requests.js";
import type { RequestSummary, Telemeter } from "../../gateway/telemeters/telemeter.js";
import { Telemeters } from "../../gateway/telemeters/telemeters.js";

function context(random: () => number = Math.random): PluginContext {
  return {
    log: silentLogger,
    clock: systemClock,
    random,
    kube: () => {
      throw new Error("no Kubernetes here");
    },
  };
}

/** A telemetry entry whose plugin makes `make()`. */
function entry(kind: string, make: () => Telemeter): PluginConfig<"telemeter"> {
  const plugin = definePlugin({
    category: "telemeter",
    kind,
    schema: object({}),
    create: make,
  });
  return { kind, plugin, config: {} };
}

function summary(url: string, time = 1000, durationMs = 1, status = 200): RequestSummary {
  return {
    time,
    router: "edge",
    server: "127.0.0.1:4140",
    method: "GET",
    url,
    host: "users",
    service: "/svc/users",
    client: "/#/io.l5d.fs/users",
    status,
    durationMs,
    error: "",
  };
}

/** A router's finish(): asks, then hands a summary over only when someone wants it. */
function finish(t: Telemeters, url: string): void {
  const o = t.observer;
  if (o?.sample()) o.observe(summary(url));
}

describe("Telemeters", () => {
  it("has no observer when no telemeter observes (routers pay one branch)", () => {
    expect(new Telemeters([], context()).observer).toBeUndefined();
    const t = new Telemeters(
      [
        entry("x.page", () => ({ adminRoutes: [] })),
        entry("x.state", () => ({ threadState: () => 1 })),
      ],
      context(),
    );
    expect(t.observer).toBeUndefined();
  });

  it("hands each request to the telemeters whose sample() chose it, and to those without sample()", () => {
    const all: string[] = [];
    const even: string[] = [];
    let n = 0;
    let asked = 0;
    const t = new Telemeters(
      [
        entry("x.all", () => ({ observe: (r) => all.push(r.url) })),
        entry("x.even", () => ({
          sample: () => {
            asked++;
            return n++ % 2 === 0;
          },
          observe: (r) => even.push(r.url),
        })),
      ],
      context(),
    );
    for (const u of ["/0", "/1", "/2", "/3"]) finish(t, u);
    expect(all).toEqual(["/0", "/1", "/2", "/3"]);
    expect(even).toEqual(["/0", "/2"]);
    expect(asked).toBe(4);
  });

  it("makes no summary when no telemeter samples the request", () => {
    const t = new Telemeters(
      [entry("x.never", () => ({ sample: () => false, observe: () => {} }))],
      context(),
    );
    expect(t.observer!.sample()).toBe(false);
  });

  it("keeps a telemeter that throws off the request path, and the others observing", () => {
    const seen: string[] = [];
    const t = new Telemeters(
      [
        entry("x.bad", () => ({
          sample: () => {
            throw new Error("bug in sample");
          },
          observe: () => {},
        })),
        entry("x.worse", () => ({
          observe: () => {
            throw new Error("bug in observe");
          },
        })),
        entry("x.good", () => ({ observe: (r) => seen.push(r.url) })),
      ],
      context(),
    );
    expect(() => finish(t, "/a")).not.toThrow();
    expect(() => finish(t, "/b")).not.toThrow();
    expect(seen).toEqual(["/a", "/b"]);
  });

  it("names the entry whose create() fails", () => {
    expect(
      () =>
        new Telemeters(
          [
            entry("x.ok", () => ({})),
            entry("x.fails", () => {
              throw new Error("cannot start");
            }),
          ],
          context(),
        ),
    ).toThrow("telemetry[1]: cannot start");
  });

  it("serves the admin routes, asking the control thread and the workers for their state", async () => {
    const t = new Telemeters(
      [
        entry("x.page", () => ({
          threadState: () => ["mine"],
          adminRoutes: [
            {
              path: "/x.json",
              serve: async (req) => ({
                contentType: "application/json",
                body: JSON.stringify({ url: req.url.search, threads: await req.threads() }),
              }),
            },
          ],
        })),
      ],
      context(),
    );
    const asked: number[] = [];
    const routes = t.adminRoutes({
      metrics: () => ({ scopes: [] }),
      own: true,
      workers: {
        telemeterStates: async (index) => {
          asked.push(index);
          return [
            { worker: 0, state: ["w0"] },
            { worker: 1, error: "no answer within 1000 ms" },
          ];
        },
      },
    });
    expect([...routes.keys()]).toEqual(["/x.json"]);
    const a = await routes.get("/x.json")!("GET", new URL("http://admin/x.json?q=1"));
    expect(a.contentType).toBe("application/json");
    expect(JSON.parse(a.body)).toEqual({
      url: "?q=1",
      threads: [
        { worker: "control", state: ["mine"] },
        { worker: 0, state: ["w0"] },
        { worker: 1, error: "no answer within 1000 ms" },
      ],
    });
    expect(asked).toEqual([0]);
  });

  it("refuses two telemeters on one path, and a page of the admin server's own", () => {
    const page = (path: string) => () => ({
      adminRoutes: [{ path, serve: () => ({ contentType: "text/plain", body: "" }) }],
    });
    const env = { metrics: () => ({ scopes: [] }), own: true, workers: undefined };
    const twice = new Telemeters([entry("x.a", page("/p")), entry("x.b", page("/p"))], context());
    expect(() => twice.adminRoutes(env)).toThrow(
      "telemetry[1] (x.b): /p is already served by telemetry[0] (x.a)",
    );
    const own = new Telemeters([entry("x.a", page("/admin/ready"))], context());
    expect(() => own.adminRoutes(env)).toThrow("one of the admin server's own pages");
    const namerState = new Telemeters([entry("x.a", page("/namer_state/x.json"))], context());
    expect(() => namerState.adminRoutes(env)).toThrow("one of the admin server's own pages");
    const relative = new Telemeters([entry("x.a", page("x"))], context());
    expect(() => relative.adminRoutes(env)).toThrow("must start with /");
    // The Prometheus page is the one a telemeter may take over.
    const prom = new Telemeters([entry("x.a", page("/admin/metrics/prometheus"))], context());
    expect([...prom.adminRoutes(env).keys()]).toEqual(["/admin/metrics/prometheus"]);
  });
});

describe("io.l5d.recentRequests", () => {
  it("samples with the context's random source", () => {
    const draws = [0.1, 0.9, 0.3, 0.5, 0.49];
    const t = recentRequestsTelemeter.create(
      { sampleRate: 0.5, capacity: 10 },
      context(() => draws.shift()!),
    );
    const urls = ["/1", "/2", "/3", "/4", "/5"];
    for (const u of urls) if (t.sample!()) t.observe!(summary(u));
    expect((t.threadState!() as RequestSummary[]).map((r) => r.url)).toEqual(["/5", "/3", "/1"]);
  });

  it("at sampleRate 0 does not observe at all", () => {
    const t = recentRequestsTelemeter.create({ sampleRate: 0, capacity: 10 }, context());
    expect(t.observe).toBeUndefined();
    expect(t.threadState!()).toEqual([]);
  });

  it("merges the threads' requests by when they finished, newest first, naming threads that did not answer", () => {
    const page = recentRequestsPage(
      [
        {
          worker: "control",
          state: [summary("/c2", 1000, 50), summary("/c1", 1000, 10)],
        },
        { worker: 0, state: [summary("/w2", 1030, 5, 503), summary("/w1", 1001, 1)] },
        { worker: 1, error: "not serving (starting, or replaced after dying)" },
      ],
      new Date(5000),
    );
    expect(page.time).toBe("1970-01-01T00:00:05.000Z");
    expect(page.requests.map((r) => [r.url, r.worker])).toEqual([
      ["/c2", "control"],
      ["/w2", 0],
      ["/c1", "control"],
      ["/w1", 0],
    ]);
    expect(page.requests[1]).toEqual({
      time: "1970-01-01T00:00:01.030Z",
      worker: 0,
      router: "edge",
      server: "127.0.0.1:4140",
      method: "GET",
      url: "/w2",
      host: "users",
      service: "/svc/users",
      client: "/#/io.l5d.fs/users",
      status: 503,
      durationMs: 5,
      error: null,
    });
    expect(page.unanswered).toEqual([
      { worker: 1, error: "not serving (starting, or replaced after dying)" },
    ]);
  });
});
