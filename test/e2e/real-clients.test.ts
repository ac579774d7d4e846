// The clients users point at an edge, against the default engine: curl over HTTP/1.0,
// ApacheBench (HTTP/1.0, keep-alive or not), wrk (keep-alive, every connection busy),
// nghttp over cleartext HTTP/2, h2load (many streams per connection, over TLS and in
// cleartext), nginx in front with its default upstream settings
// (`proxy_http_version 1.0`, Connection: close), and HAProxy in front in HTTP mode with
// its defaults (HTTP/1.1, keep-alive to the server).

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { chainPem, TestCa } from "../tls/test-ca.js";
import {
  cleanup,
  echo,
  freePort,
  onCleanup,
  requireBinary,
  runHaproxy,
  startLintel,
  startLintelTo,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

const run = promisify(execFile);

async function edge() {
  const up = await startUpstream("up", echo("up"));
  const l = await startLintelTo(up.port);
  return { up, port: l.port() };
}

describe("real clients against the default engine", () => {
  it("curl --http1.0 gets its answer, and the connection closes after it", async () => {
    const { up, port } = await edge();
    const { stdout } = await run("curl", [
      "-sS",
      "--http1.0",
      "--max-time",
      "5",
      "-D",
      "-",
      `http://127.0.0.1:${port}/ten`,
    ]);
    expect(stdout.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(stdout.toLowerCase()).toContain("connection: close");
    expect(up.seen.map((s) => s.url)).toEqual(["/ten"]);
  });

  it("ApacheBench completes every request, with and without keep-alive", async () => {
    const ab = requireBinary("ab", "apache2-utils", "ApacheBench against lintel");
    if (!ab) return;
    const { port } = await edge();
    for (const keepAlive of [[], ["-k"]]) {
      const { stdout } = await run(ab, [
        ...keepAlive,
        "-n",
        "200",
        "-c",
        "8",
        "-s",
        "5",
        `http://127.0.0.1:${port}/ab`,
      ]);
      const complete = /Complete requests:\s+(\d+)/.exec(stdout)?.[1];
      const failed = /Failed requests:\s+(\d+)/.exec(stdout)?.[1];
      const non2xx = /Non-2xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? "0";
      expect({ keepAlive: keepAlive.length > 0, complete, failed, non2xx }).toEqual({
        keepAlive: keepAlive.length > 0,
        complete: "200",
        failed: "0",
        non2xx: "0",
      });
    }
  }, 30_000);

  it("wrk keeps its connections busy: every response 2xx, no socket error", async () => {
    const wrk = requireBinary("wrk", "wrk", "wrk against lintel");
    if (!wrk) return;
    const { up, port } = await edge();
    const { stdout } = await run(wrk, [
      "-t1",
      "-c8",
      "-d1s",
      "--timeout",
      "5s",
      `http://127.0.0.1:${port}/wrk`,
    ]);
    const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
    // wrk prints these lines only when there is something to count.
    expect(stdout).not.toMatch(/Socket errors|Non-2xx/);
    expect(requests).toBeGreaterThan(100);
    // Requests still in flight when wrk stopped reached the upstream without being counted.
    expect(up.seen.length).toBeGreaterThanOrEqual(requests);
    expect(up.seen.length).toBeLessThanOrEqual(requests + 8);
    expect(new Set(up.seen.map((s) => s.url))).toEqual(new Set(["/wrk"]));
  }, 20_000);

  it("h2load runs many streams per connection over TLS (ALPN h2) and cleartext", async () => {
    const h2load = requireBinary("h2load", "nghttp2-client", "h2load against lintel");
    if (!h2load) return;
    const ca = await TestCa.root();
    const leaf = await ca.leaf({ dns: ["app.test"] });
    const up = await startUpstream("up", echo("up"));
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0}
  - {ip: 127.0.0.1, port: 0, tls: {certPath: app.crt, keyPath: app.key}}
`,
      { "app.crt": chainPem(leaf, ca), "app.key": leaf.keyPem() },
    );
    const urls = [
      `http://127.0.0.1:${l.port(undefined, 0)}/h2c`,
      `https://127.0.0.1:${l.port(undefined, 1)}/h2`,
    ];
    for (const url of urls) {
      // 4 connections x 16 concurrent streams, 400 requests.
      const { stdout } = await run(h2load, ["-n", "400", "-c", "4", "-m", "16", "-t", "1", url]);
      const protocol = /Application protocol: (\S+)/.exec(stdout)?.[1];
      const requests = /requests: (.*)/.exec(stdout)?.[1];
      const statuses = /status codes: (.*)/.exec(stdout)?.[1];
      expect({ url, protocol, requests, statuses }).toEqual({
        url,
        protocol: url.startsWith("https") ? "h2" : "h2c",
        requests: "400 total, 400 started, 400 done, 400 succeeded, 0 failed, 0 errored, 0 timeout",
        statuses: "400 2xx, 0 3xx, 0 4xx, 0 5xx",
      });
    }
    const seen = up.seen.map((s) => s.url);
    expect(seen.filter((u) => u === "/h2c").length).toBe(400);
    expect(seen.filter((u) => u === "/h2").length).toBe(400);
  }, 30_000);

  it("nghttp speaks cleartext HTTP/2 to it (prior knowledge)", async () => {
    const nghttp = requireBinary("nghttp", "nghttp2-client", "nghttp against lintel");
    if (!nghttp) return;
    const { up, port } = await edge();
    const { stdout } = await run(nghttp, [
      "-n",
      "-s",
      `http://127.0.0.1:${port}/a`,
      `http://127.0.0.1:${port}/b`,
    ]);
    // -s prints one statistics line per stream, with its status.
    expect(stdout.match(/\s200\s/g)?.length).toBe(2);
    expect(up.seen.map((s) => s.url).sort()).toEqual(["/a", "/b"]);
  });

  it("nginx in front with its default upstream settings (HTTP/1.0, close)", async () => {
    const nginx = requireBinary("nginx", "nginx", "nginx in front of lintel");
    if (!nginx) return;
    const { up, port } = await edge();
    const dir = mkdtempSync(join(tmpdir(), "lintel-nginx-"));
    const front = await freePort();
    writeFileSync(
      join(dir, "nginx.conf"),
      `daemon off;
# One process: stopping it (even with SIGKILL) leaves no worker behind.
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir};
  proxy_temp_path ${dir};
  fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir};
  scgi_temp_path ${dir};
  server {
    listen 127.0.0.1:${front};
    location / { proxy_pass http://127.0.0.1:${port}; }
  }
}
`,
    );
    const { spawn } = await import("node:child_process");
    const child = spawn(nginx, ["-c", join(dir, "nginx.conf"), "-p", dir], { stdio: "ignore" });
    onCleanup(() => {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    });
    let answer = "";
    for (let i = 0; i < 50 && answer === ""; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await run("curl", ["-s", "--max-time", "5", `http://127.0.0.1:${front}/via-nginx`])
        .then((r) => r.stdout)
        .catch(() => "");
    }
    expect(JSON.parse(answer).url).toBe("/via-nginx");
    expect(up.seen.map((s) => s.url)).toEqual(["/via-nginx"]);
  }, 20_000);

  it("HAProxy in front in HTTP mode with its defaults (HTTP/1.1 keep-alive to lintel)", async () => {
    const haproxy = requireBinary("haproxy", "haproxy", "HAProxy in front of lintel");
    if (!haproxy) return;
    const { up, port } = await edge();
    const dir = mkdtempSync(join(tmpdir(), "lintel-haproxy-front-"));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const front = await freePort();
    const cfg = join(dir, "haproxy.cfg");
    writeFileSync(
      cfg,
      `global
  maxconn 64
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend web
  bind 127.0.0.1:${front}
  default_backend lintel
backend lintel
  server l1 127.0.0.1:${port}
`,
    );
    await runHaproxy(haproxy, cfg, front);
    // Several requests on one client connection, a body among them: HAProxy reuses its
    // server connection between them.
    const { stdout } = await run("curl", [
      "-sS",
      "--max-time",
      "5",
      "-w",
      "%{http_code}\n",
      `http://127.0.0.1:${front}/a`,
      "--data-binary",
      "hello",
      `http://127.0.0.1:${front}/b`,
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
    ]);
    expect(stdout.trim().split("\n").slice(-2)).toEqual(["200", "200"]);
    expect(up.seen.map((s) => [s.method, s.url, s.body.toString()])).toEqual([
      ["POST", "/a", "hello"],
      ["POST", "/b", "hello"],
    ]);
  }, 20_000);
});
