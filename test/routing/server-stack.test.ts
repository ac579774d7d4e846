// The server stack: its layers in the order a request meets them, what each answers or
// refuses, and that a finished request gives back what the layers it passed took.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ServerConfig } from "../../gateway/config/config-schema.js";
import { formatConfigError } from "../../gateway/config/load.js";
import { ProxyError } from "../../gateway/http/errors.js";
import type { ServerExchange } from "../../gateway/http/exchange.js";
import { silentLogger } from "../../gateway/log.js";
import {
  type Answerer,
  type ArrivingRequest,
  clientAddress,
  LATER,
  type ServerLayer,
} from "../../gateway/routing/server-stack/layer.js";
import { LayerStack, type StackedRequest } from "../../gateway/routing/server-stack/layer-stack.js";
import { ServerStack } from "../../gateway/routing/server-stack/server-stack.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import { arriving } from "../support/fake-exchange.js";
import { layerServices, noServices } from "../support/plugin-services.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lintel-stack-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function serverConfig(server: string): Promise<ServerConfig> {
  const f = join(dir, "c.yaml");
  writeFileSync(f, `routers:\n- protocol: http\n  servers:\n  - ${server}\n`);
  const r = await loadLintelConfig(f);
  if (!r.ok) throw new Error(r.errors.map(formatConfigError).join("\n"));
  return r.config.routers[0]!.servers[0]!;
}

const CONTEXT = { ...noServices, ...layerServices(), log: silentLogger };

const LIMITS = {
  maxTargetBytes: 1024,
  maxHeaderBytes: 8192,
  maxHeaderCount: 20,
  maxBodyBytes: undefined,
};

/** Just enough of an exchange for the server stack's layers. */
function exchange(url: string, headers: string[]): ServerExchange {
  return {
    method: "GET",
    url,
    httpVersion: "1.1",
    headers,
    contentLength: undefined,
    hasBody: false,
  } as unknown as ServerExchange;
}

function request(
  url: string,
  headers: string[] = ["host", "a.test"],
  trusted: string[] = [],
): StackedRequest {
  return arriving(exchange(url, headers), trusted);
}

class Answers implements Answerer {
  readonly got: { status: number; headers: readonly string[]; body: string }[] = [];
  readonly proceeded: ArrivingRequest[] = [];
  readonly refused: ProxyError[] = [];
  answer(_req: ArrivingRequest, status: number, headers: readonly string[], body: Buffer) {
    this.got.push({ status, headers, body: body.toString() });
  }
  proceed(req: ArrivingRequest) {
    this.proceeded.push(req);
  }
  refuse(_req: ArrivingRequest, err: ProxyError) {
    this.refused.push(err);
  }
}

describe("the server stack", () => {
  it("lists its layers in order: ACME answers, redirect, checks, call depth, admission", async () => {
    const s = await serverConfig(
      "{port: 0, httpsRedirect: {port: 8443}, maxConcurrentRequests: 2}",
    );
    const stack = new ServerStack(s, {
      ...CONTEXT,
      routerLabel: "r",
      limits: LIMITS,
      acmeHttp: async () => undefined,
    });
    expect(stack.layers.map((l) => l.name)).toEqual([
      "acmeChallenge",
      "httpsRedirect",
      "requestChecks",
      "callDepth",
      "admission",
    ]);
    const plain = new ServerStack(await serverConfig("{port: 0}"), {
      ...CONTEXT,
      routerLabel: "r",
      limits: LIMITS,
    });
    expect(plain.layers.map((l) => l.name)).toEqual(["requestChecks", "callDepth"]);
  });

  it("puts the server's own layers after the checks and before admission", async () => {
    const stack = new ServerStack(
      await serverConfig(
        "{port: 0, maxConcurrentRequests: 1, layers: [{kind: httpsRedirect, port: 8443}]}",
      ),
      { ...CONTEXT, routerLabel: "r", limits: LIMITS },
    );
    expect(stack.layers.map((l) => l.name)).toEqual([
      "requestChecks",
      "callDepth",
      "httpsRedirect",
      "admission",
    ]);
    // Answered by the layer: the one admission slot is never taken, however many come.
    const answers = new Answers();
    for (let i = 0; i < 3; i++) {
      const req = request("/x");
      expect(stack.arrive(req, answers)).toBe(true);
      expect(req.passed).toBe(3);
    }
    expect(answers.got.map((a) => a.status)).toEqual([308, 308, 308]);
    // A request the checks refuse never reaches it.
    expect(() => stack.arrive(request("/", []), answers)).toThrow(/needs a Host header/);
    expect(answers.got).toHaveLength(3);
  });

  it("answers an ACME challenge before the redirect, and redirects the rest", async () => {
    const s = await serverConfig("{port: 0, httpsRedirect: {port: 8443}}");
    const token = "t".repeat(20);
    const stack = new ServerStack(s, {
      ...CONTEXT,
      routerLabel: "r",
      limits: LIMITS,
      acmeHttp: async (t) => (t === token ? `${token}.thumb` : undefined),
    });
    const answers = new Answers();
    expect(stack.arrive(request(`/.well-known/acme-challenge/${token}`), answers)).toBe(true);
    expect(stack.arrive(request("/.well-known/acme-challenge/unknown-token-xyz"), answers)).toBe(
      true,
    );
    expect(stack.arrive(request("/a?b=1", ["host", "a.test:8080"]), answers)).toBe(true);
    await new Promise((r) => setImmediate(r));
    const byStatus = answers.got.map((a) => [a.status, a.body.trim()]);
    expect(byStatus).toContainEqual([200, `${token}.thumb`]);
    expect(byStatus).toContainEqual([404, "no such ACME challenge"]);
    const redirect = answers.got.find((a) => a.status === 308)!;
    expect(redirect.headers).toContain("https://a.test:8443/a?b=1");
  });

  it("refuses a routing loop with the call depth in the message", async () => {
    const stack = new ServerStack(await serverConfig("{port: 0, maxCallDepth: 2}"), {
      ...CONTEXT,
      routerLabel: "r",
      limits: LIMITS,
    });
    const looped = request("/", ["host", "a.test", "via", "1.1 a, 1.1 b"]);
    let err: unknown;
    try {
      stack.arrive(looped, new Answers());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).code).toBe("LINTEL_CALL_DEPTH");
    expect(stack.arrive(request("/", ["host", "a.test", "via", "1.1 a"]), new Answers())).toBe(
      false,
    );
  });

  it("admits up to maxConcurrentRequests, and a finished request gives its slot back", async () => {
    const stack = new ServerStack(await serverConfig("{port: 0, maxConcurrentRequests: 2}"), {
      ...CONTEXT,
      routerLabel: "r",
      limits: LIMITS,
    });
    const a = request("/");
    const b = request("/");
    const c = request("/");
    expect(stack.arrive(a, new Answers())).toBe(false);
    expect(stack.arrive(b, new Answers())).toBe(false);
    expect(() => stack.arrive(c, new Answers())).toThrow(/limit of 2 concurrent requests/);
    // Refused at admission: it passed the checks only, and leaving gives back nothing.
    expect(c.passed).toBe(2);
    stack.leave(c);
    expect(() => stack.arrive(request("/"), new Answers())).toThrow(/concurrent/);
    stack.leave(a);
    expect(stack.arrive(request("/"), new Answers())).toBe(false);
  });

  it("refuses a request over the router's limits before admission takes a slot", async () => {
    const stack = new ServerStack(await serverConfig("{port: 0, maxConcurrentRequests: 1}"), {
      ...CONTEXT,
      routerLabel: "r",
      limits: LIMITS,
    });
    const long = request(`/${"x".repeat(2000)}`);
    expect(() => stack.arrive(long, new Answers())).toThrow(/maxInitialLineKB/);
    expect(long.passed).toBe(0);
    expect(stack.arrive(request("/"), new Answers())).toBe(false);
  });

  it("resumes after a layer that decides later, and leaves every layer the request met", () => {
    const trail: string[] = [];
    const layer = (name: string, verdict: (req: ArrivingRequest) => boolean | "later") =>
      ({
        name,
        arrive: (req) => {
          trail.push(`arrive ${name}`);
          return verdict(req);
        },
        leave: () => trail.push(`leave ${name}`),
      }) satisfies ServerLayer;
    const stack = new LayerStack(
      [layer("a", () => false), layer("later", () => LATER), layer("c", () => false)],
      "passed",
    );
    const answers = new Answers();
    const req = request("/");
    expect(stack.arrive(req, answers)).toBe(LATER);
    expect(req.passed).toBe(2);
    // The deciding layer said go on: the stack picks up after it, not from the start.
    expect(stack.arrive(req, answers)).toBe(false);
    expect(req.passed).toBe(3);
    stack.leave(req);
    expect(trail).toEqual([
      "arrive a",
      "arrive later",
      "arrive c",
      "leave c",
      "leave later",
      "leave a",
    ]);
    // A service's stack counts in its own slot: the server's count is not touched.
    const service = new LayerStack([layer("s", () => false)], "servicePassed");
    const other = request("/");
    other.passed = 5;
    expect(service.arrive(other, answers)).toBe(false);
    expect([other.passed, other.servicePassed]).toEqual([5, 1]);
  });

  it("reads the client's address through trusted proxies only", () => {
    const direct = request("/", ["host", "a", "x-forwarded-for", "203.0.113.7"]);
    (direct.ex as { clientAddress: string }).clientAddress = "198.51.100.1";
    expect(clientAddress(direct)).toBe("198.51.100.1");
    const viaLb = request(
      "/",
      ["host", "a", "x-forwarded-for", "203.0.113.7, 10.0.0.9", "x-forwarded-for", "10.0.0.8"],
      ["10.0.0.0/8"],
    );
    (viaLb.ex as { clientAddress: string }).clientAddress = "10.0.0.1";
    expect(clientAddress(viaLb)).toBe("203.0.113.7");
    expect(viaLb.client).toBe("203.0.113.7");
  });
});
