// A Linkerd 1 h2 router for gRPC, with every h2 parameter Linkerd documents, loads
// unchanged and means in lintel what it meant in Linkerd (what each does is tested end to
// end in test/e2e/linkerd-h2-params.test.ts and grpc.test.ts).

import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { http2Settings } from "../../gateway/config/h2-settings.js";
import { loadLintelConfig } from "../../gateway/setup.js";

const file = resolve(import.meta.dirname, "../fixtures/linkerd/h2-grpc.yaml");

describe("Linkerd 1's h2 router config", () => {
  it("loads with its identifier, SETTINGS, trace propagator and retry buffers", async () => {
    const r = await loadLintelConfig(file);
    if (!r.ok) throw new Error(r.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
    const router = r.config.routers[0]!;
    expect(router.protocol).toBe("h2");
    expect(router.identifier[0]).toMatchObject({
      kind: "io.l5d.header.path",
      config: { header: ":path", segments: 1 },
    });
    expect(router.h2AccessLog).toMatch(/logs\/grpc-access\.log$/);
    expect(router.tracePropagator).toEqual({ kind: "io.l5d.zipkin" });
    expect(http2Settings(router.servers[0]!)).toEqual({
      headerTableSize: 4096,
      initialWindowSize: 65_535,
      maxFrameSize: 16_384,
      maxHeaderListSize: 65_536,
      maxConcurrentStreams: 1000,
    });
    const client = router.client;
    if (client.kind !== "io.l5d.static") throw new Error("expected io.l5d.static");
    expect(client.configs[0]).toMatchObject({ forwardClientCert: false, maxFrameBytes: 16_384 });
    const service = router.service;
    if (service.kind !== "io.l5d.global") throw new Error("expected io.l5d.global");
    expect(service).toMatchObject({
      classificationTimeoutMs: 100,
      retryBufferSize: { requestBytes: 16_383, responseBytes: 16_383 },
    });
  });
});
