// When certificates are renewed and failures retried (pure schedule functions), what the
// CA's renewal information (RFC 9773) says, and who on-demand TLS lets order: with a
// manual clock and fixed randomness, no sleeps.

import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { ariCertId, fetchRenewalInfo } from "../../tls/acme/ari.js";
import { caAgent, httpGet } from "../../tls/acme/http-get.js";
import { OnDemandPolicy } from "../../tls/acme/on-demand.js";
import { RETRY_MAX_MS, renewalTime, retryDelay } from "../../tls/acme/schedule.js";
import { fakeClock } from "../support/fake-kube.js";
import { TestCa } from "../tls/test-ca.js";

const DAY = 86_400_000;
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}

describe("renewal time", () => {
  const cert = { notBefore: 0, notAfter: 90 * DAY };

  it("is when a third of the lifetime is left, without renewal information", () => {
    expect(renewalTime(cert, undefined, 0, () => 0.5)).toBe(60 * DAY);
  });

  it("is a random point in the CA's window, and now once the window has passed", () => {
    const window = { start: 40 * DAY, end: 50 * DAY };
    expect(renewalTime(cert, window, 0, () => 0)).toBe(40 * DAY);
    expect(renewalTime(cert, window, 0, () => 0.5)).toBe(45 * DAY);
    // Already inside the window: from now to its end.
    expect(renewalTime(cert, window, 48 * DAY, () => 0.5)).toBe(49 * DAY);
    expect(renewalTime(cert, window, 51 * DAY, () => 0.5)).toBe(51 * DAY);
  });
});

describe("retries after a failure", () => {
  it("double from the minimum with jitter, up to a day", () => {
    const min = 60_000;
    expect(retryDelay(1, undefined, () => 0, min)).toBe(30_000);
    expect(retryDelay(1, undefined, () => 1, min)).toBe(60_000);
    expect(retryDelay(3, undefined, () => 1, min)).toBe(240_000);
    expect(retryDelay(30, undefined, () => 1, min)).toBe(RETRY_MAX_MS);
  });

  it("never come before the CA's Retry-After", () => {
    expect(retryDelay(1, 3_600_000, () => 1, 60_000)).toBe(3_600_000);
  });
});

describe("renewal information (ARI)", () => {
  it("names a certificate by its authority key identifier and serial", async () => {
    const root = await TestCa.root();
    const leaf = await root.leaf({ dns: ["a.test"] });
    const id = ariCertId(leaf.certPem)!;
    const [aki, serial] = id.split(".");
    expect(Buffer.from(serial!, "base64url").toString("hex").toUpperCase()).toBe(
      leaf.serial.replace(/^0+/, ""),
    );
    expect(Buffer.from(aki!, "base64url").length).toBeGreaterThanOrEqual(20);
  });

  it("reads the suggested window and when to ask again", async () => {
    let asked = "";
    const base = await serve((req, res) => {
      asked = req.url!;
      res.writeHead(200, { "content-type": "application/json", "retry-after": "21600" });
      res.end(
        JSON.stringify({
          suggestedWindow: { start: "2025-01-10T00:00:00Z", end: "2025-01-12T00:00:00Z" },
        }),
      );
    });
    const now = Date.parse("2025-01-01T00:00:00Z");
    const info = await fetchRenewalInfo(
      httpGet(caAgent(undefined), 2000),
      `${base}/renewal-info/`,
      "AAA.BBB",
      now,
    );
    expect(asked).toBe("/renewal-info/AAA.BBB");
    expect(info.window).toEqual({
      start: Date.parse("2025-01-10T00:00:00Z"),
      end: Date.parse("2025-01-12T00:00:00Z"),
    });
    expect(info.nextCheckAt).toBe(now + 21_600_000);
  });

  it("refuses an answer without a valid window", async () => {
    const base = await serve((_req, res) =>
      res.end(JSON.stringify({ suggestedWindow: { start: "x" } })),
    );
    await expect(
      fetchRenewalInfo(httpGet(caAgent(undefined), 2000), base, "A.B", 0),
    ).rejects.toThrow(/no valid suggestedWindow/);
  });
});

describe("on-demand TLS", () => {
  function policy(ask?: string, caps = { maxPerMinute: 2, maxConcurrent: 1 }) {
    const clock = fakeClock();
    const p = new OnDemandPolicy(
      { allow: ["shop.example", "*.customers.example"], ask, waitMs: 1000, ...caps },
      httpGet(caAgent(undefined), 2000),
      clock,
    );
    return { p, clock };
  }

  it("allows listed names and names under a listed domain, nothing else", async () => {
    const { p } = policy();
    expect((await p.permits("shop.example")).ok).toBe(true);
    expect((await p.permits("a.b.customers.example")).ok).toBe(true);
    expect(await p.permits("customers.example")).toEqual({
      ok: false,
      reason: "customers.example is not in onDemand.allow",
    });
    expect((await p.permits("127.0.0.1")).ok).toBe(false);
    expect((await p.permits("bad_name.example")).ok).toBe(false);
  });

  it("asks the ask endpoint once per name a minute", async () => {
    const asked: string[] = [];
    const base = await serve((req, res) => {
      const d = new URL(req.url!, "http://x").searchParams.get("domain")!;
      asked.push(d);
      res.writeHead(d === "yes.example" ? 200 : 403).end();
    });
    const { p, clock } = policy(`${base}/ask?token=t`);
    expect((await p.permits("yes.example")).ok).toBe(true);
    expect((await p.permits("no.example")).ok).toBe(false);
    expect((await p.permits("yes.example")).ok).toBe(true);
    expect(asked).toEqual(["yes.example", "no.example"]);
    clock.advance(61_000);
    await p.permits("yes.example");
    expect(asked).toEqual(["yes.example", "no.example", "yes.example"]);
  });

  it("caps orders per minute and at once", () => {
    const { p, clock } = policy();
    expect(p.begin()).toBe(true);
    expect(p.begin()).toBe(false); // one at a time
    p.done();
    expect(p.begin()).toBe(true);
    p.done();
    expect(p.begin()).toBe(false); // two this minute
    clock.advance(60_000);
    expect(p.begin()).toBe(true);
  });
});
