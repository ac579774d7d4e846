// Unit tests of the `responseHeaders` layer: what it adds to a request's response fields
// (set, add, HSTS on TLS only), which upstream fields the response writer then drops
// (remove, and the names set), how two such layers combine, and the config it refuses.

import { describe, expect, it } from "vitest";
import {
  hstsValue,
  ResponseHeadersLayer,
  responseHeadersLayer,
} from "../../../gateway/layers/response/response-headers.js";
import { ForwardHandler } from "../../../gateway/routing/forward.js";
import type { ArrivingRequest, ServerLayer } from "../../../gateway/routing/server-stack/layer.js";
import { addResponseHeaders } from "../../../gateway/routing/server-stack/layer.js";
import { arriving, decodeLayers, FakeControl, FakeExchange, layerContext } from "./fakes.js";

/** The layers of `yaml` (a flow list), made as a server makes them. */
async function layers(yaml: string): Promise<ServerLayer[]> {
  const d = await decodeLayers(yaml);
  if ("errors" in d) throw new Error(d.errors);
  return d.layers.map((l) => l.plugin.create(l.config, layerContext()));
}

async function errors(block: string): Promise<string> {
  const d = await decodeLayers(`[{kind: responseHeaders, ${block}}]`);
  return "errors" in d ? d.errors : "";
}

/** Runs `ls` over a request (TLS or not), then forwards an upstream head through the writer. */
function forward(ls: readonly ServerLayer[], upstream: string[], secure = false) {
  const ex = new FakeExchange("GET", ["host", "svc"], secure);
  const req: ArrivingRequest = arriving(ex);
  for (const l of ls) expect(l.arrive(req, undefined as never)).toBe(false);
  const h = new ForwardHandler(
    ex,
    { clearContext: false, engineWritesDate: false },
    () => {},
    () => {},
    undefined,
    undefined,
    req.responseHeaders,
    req.dropResponseFields,
  );
  h.onStart(new FakeControl());
  h.onHead(200, upstream);
  return { req, head: ex.head!.headers };
}

const UPSTREAM = [
  "content-type",
  "text/html",
  "server",
  "nginx/1.25",
  "x-powered-by",
  "PHP/8",
  "x-frame-options",
  "SAMEORIGIN",
  "link",
  "</up.css>; rel=preload",
  "content-length",
  "10",
];

describe("the responseHeaders layer", () => {
  it("sets (replacing the upstream's), adds (beside it) and removes fields", async () => {
    const ls = await layers(
      '[{kind: responseHeaders, set: {X-Frame-Options: DENY, x-content-type-options: nosniff}, add: {link: ["</a.js>; rel=preload", "</b.js>; rel=preload"]}, remove: [Server, x-powered-by]}]',
    );
    const { head } = forward(ls, UPSTREAM);
    expect(head).toEqual([
      "content-type",
      "text/html",
      "link",
      "</up.css>; rel=preload",
      "via",
      "1.1 lintel",
      "x-frame-options",
      "DENY",
      "x-content-type-options",
      "nosniff",
      "link",
      "</a.js>; rel=preload",
      "link",
      "</b.js>; rel=preload",
    ]);
  });

  it("sends Strict-Transport-Security on TLS requests only, replacing the upstream's", async () => {
    const ls = await layers(
      "[{kind: responseHeaders, hsts: {maxAgeSecs: 63072000, includeSubDomains: true, preload: true}}]",
    );
    const upstream = ["content-type", "text/plain", "strict-transport-security", "max-age=60"];
    const tls = forward(ls, upstream, true);
    expect(
      tls.head.filter((_, i) => i % 2 === 0 && tls.head[i] === "strict-transport-security"),
    ).toHaveLength(1);
    expect(tls.head.slice(-2)).toEqual([
      "strict-transport-security",
      "max-age=63072000; includeSubDomains; preload",
    ]);
    // Over plain HTTP a browser ignores it anyway (RFC 6797 §8.1): lintel neither adds nor drops.
    const plain = forward(ls, upstream, false);
    expect(plain.req.responseHeaders).toBeUndefined();
    expect(plain.head).toEqual([...upstream, "via", "1.1 lintel"]);
  });

  it("defaults max-age to a year, without includeSubDomains or preload", async () => {
    const ls = await layers("[{kind: responseHeaders, hsts: {}}]");
    expect(forward(ls, [], true).head.slice(-2)).toEqual([
      "strict-transport-security",
      "max-age=31536000",
    ]);
    expect(hstsValue({ maxAgeSecs: 0, includeSubDomains: true, preload: false })).toBe(
      "max-age=0; includeSubDomains",
    );
  });

  it("replaces what an earlier layer set, and keeps what it added under other names", async () => {
    const [server, service] = await layers(
      "[{kind: responseHeaders, set: {cache-control: no-store, x-a: '1'}, remove: [server]}, {kind: responseHeaders, set: {cache-control: 'max-age=60'}, remove: [x-powered-by]}]",
    );
    const ex = new FakeExchange("GET", []);
    const req = arriving(ex);
    addResponseHeaders(req, ["ratelimit", "limit=10"]);
    server!.arrive(req, undefined as never);
    service!.arrive(req, undefined as never);
    expect(req.responseHeaders).toEqual([
      "ratelimit",
      "limit=10",
      "x-a",
      "1",
      "cache-control",
      "max-age=60",
    ]);
    const { head } = forward([server!, service!], UPSTREAM);
    // Both layers' drops hold: server (the first's) and x-powered-by (the second's).
    expect(head.filter((_, i) => i % 2 === 0)).toEqual([
      "content-type",
      "x-frame-options",
      "link",
      "via",
      "x-a",
      "cache-control",
    ]);
  });

  it("is made for the TLS and the plain case once, not per request", () => {
    const l = new ResponseHeadersLayer({
      set: { "x-a": "1" },
      add: undefined,
      remove: undefined,
      hsts: undefined,
    });
    const a = arriving(new FakeExchange("GET", []));
    const b = arriving(new FakeExchange("GET", [], true));
    l.arrive(a);
    l.arrive(b);
    expect(a.responseHeaders).toEqual(["x-a", "1"]);
    expect(b.responseHeaders).toEqual(["x-a", "1"]);
    expect(responseHeadersLayer.kind).toBe("responseHeaders");
  });
});

describe("the responseHeaders config", () => {
  it("refuses framing and hop-by-hop fields, and names that are not tokens", async () => {
    expect(await errors("remove: [content-length]")).toMatch(
      /remove\[0\].*content-length frames the message/,
    );
    expect(await errors("set: {Transfer-Encoding: chunked}")).toMatch(
      /set\.Transfer-Encoding.*transfer-encoding frames/,
    );
    expect(await errors("add: {content-encoding: br}")).toMatch(/content-encoding frames/);
    expect(await errors("set: {connection: close}")).toMatch(/connection frames/);
    expect(await errors('set: {"x frame": DENY}')).toMatch(/"x frame" is not a field name/);
    expect(await errors('remove: [":status"]')).toMatch(/":status" is not a field name/);
  });

  it("refuses a field named twice, and HSTS named besides hsts", async () => {
    expect(await errors("set: {x-a: '1'}, remove: [X-A]")).toMatch(
      /remove\[0\].*x-a is named twice \(in set and remove\)/,
    );
    expect(await errors("set: {x-a: '1', X-A: '2'}")).toMatch(/x-a is named twice/);
    expect(await errors("hsts: {}, remove: [strict-transport-security]")).toMatch(
      /strict-transport-security is what hsts sends/,
    );
  });

  it("refuses preload without includeSubDomains and a year", async () => {
    expect(await errors("hsts: {preload: true}")).toMatch(
      /hsts\.preload.*includeSubDomains: true and maxAgeSecs of at least 31536000/,
    );
    expect(await errors("hsts: {preload: true, includeSubDomains: true, maxAgeSecs: 600}")).toMatch(
      /hsts\.preload/,
    );
    expect(await errors("hsts: {preload: true, includeSubDomains: true}")).toBe("");
  });

  it("refuses values with control characters, an empty block and unknown keys", async () => {
    expect(await errors('set: {x-a: "1\\r\\nx-b: 2"}')).toMatch(/set\.x-a.*cannot hold CR, LF/);
    expect(await errors("set: {x-a: 5}")).toMatch(/set\.x-a.*expected a field value/);
    const empty = await decodeLayers("[{kind: responseHeaders}]");
    expect("errors" in empty ? empty.errors : "").toMatch(/needs set, add, remove or hsts/);
    expect(await errors("hsts: {maxAge: 5}")).toMatch(/hsts\.maxAge.*unknown key/);
  });
});
