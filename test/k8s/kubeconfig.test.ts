// Reading a kubeconfig without a server: which context, cluster and user it picks, and
// each mistake reported with the file and the key at fault (never with a secret).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeConfigError, loadKubeconfig, parseKubeconfig } from "../../gateway/k8s/kubeconfig.js";
import { type Issued, TestCa } from "../tls/test-ca.js";

let dir: string;
let ca: TestCa;
let client: Issued;
let otherClient: Issued;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lintel-kubeconfig-"));
  ca = await TestCa.root();
  client = await ca.leaf({ client: true });
  otherClient = await ca.leaf({ client: true });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const FILE = "~/.kube/config";
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** A kubeconfig with contexts `dev` (current, namespace edge) and `prod`, and `user`. */
function config(user: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  return {
    "current-context": "dev",
    clusters: [
      { name: "dev", cluster: { server: "https://dev.example:6443", ...cluster } },
      { name: "prod", cluster: { server: "https://prod.example" } },
    ],
    users: [{ name: "admin", user }],
    contexts: [
      { name: "dev", context: { cluster: "dev", user: "admin", namespace: "edge" } },
      { name: "prod", context: { cluster: "prod" } },
    ],
  };
}

function read(doc: unknown, context?: string) {
  return parseKubeconfig(stringify(doc), { path: FILE, folder: dir }, context);
}

function problem(doc: unknown, context?: string): string {
  try {
    read(doc, context);
  } catch (e) {
    expect(e).toBeInstanceOf(KubeConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a KubeConfigError");
}

describe("choosing a context", () => {
  it("takes current-context, its cluster, user and namespace", () => {
    const k = read(config({ token: "abc" }));
    expect(k.contextName).toBe("dev");
    expect(k.server.href).toBe("https://dev.example:6443/");
    expect(k.defaultNamespace).toBe("edge");
    expect(k.user).toEqual({ token: "abc" });
    expect(k.ca).toBeUndefined();
  });

  it("takes a named context over current-context", () => {
    const k = read(config({ token: "abc" }), "prod");
    expect(k.server.host).toBe("prod.example");
    expect(k.defaultNamespace).toBeUndefined();
    expect(k.user).toEqual({});
  });

  it("says how to choose a context when there is no current-context", () => {
    const { "current-context": _, ...rest } = config({});
    expect(problem(rest)).toBe(
      `${FILE}: no current-context: name a context in lintel's kubernetes.context, or set one with \`kubectl config use-context\``,
    );
  });

  it("names a context's missing cluster or user", () => {
    const doc = config({});
    doc.contexts[0]!.context.cluster = "staging";
    expect(problem(doc)).toBe(
      `${FILE}: contexts[0].context.cluster: no cluster named "staging" (it has: dev, prod)`,
    );
    const noUsers = { ...config({}), users: [] };
    expect(problem(noUsers)).toBe(
      `${FILE}: contexts[0].context.user: no user named "admin" (it has no users)`,
    );
  });

  it("reads the file from disk, naming it when it is missing", () => {
    const path = join(dir, "config");
    writeFileSync(path, stringify(config({ token: "abc" })));
    expect(loadKubeconfig(path, "dev").user).toEqual({ token: "abc" });
    expect(() => loadKubeconfig(join(dir, "missing"))).toThrow(
      `kubeconfig ${join(dir, "missing")}: no such file ${join(dir, "missing")}`,
    );
  });

  it("refuses YAML that is not a kubeconfig", () => {
    expect(problem(["a", "list"])).toBe(
      `${FILE}: not a kubeconfig (expected a mapping with clusters, contexts and users)`,
    );
    expect(problem({ ...config({}), clusters: { dev: {} } })).toBe(
      `${FILE}: clusters: expected a list`,
    );
  });
});

describe("clusters", () => {
  it("reads certificate-authority-data and tls-server-name", () => {
    const k = read(
      config(
        {},
        { "certificate-authority-data": b64(ca.certPem), "tls-server-name": "api.internal" },
      ),
    );
    expect(k.ca).toBe(ca.certPem.trim());
    expect(k.tlsServerName).toBe("api.internal");
  });

  it("names each cluster mistake", () => {
    expect(problem(config({}, { "proxy-url": "http://proxy:3128" }))).toBe(
      `${FILE}: clusters[0].cluster.proxy-url: not supported: lintel connects to the API server directly`,
    );
    expect(problem(config({}, { server: "dev.example:6443" }))).toBe(
      `${FILE}: clusters[0].cluster.server: dev.example: is not http: or https:`,
    );
    expect(problem(config({}, { server: "not a url" }))).toBe(
      `${FILE}: clusters[0].cluster.server: "not a url" is not a URL (expected https://host:port)`,
    );
    expect(problem(config({}, { "certificate-authority": "ca.crt" }))).toBe(
      `${FILE}: clusters[0].cluster.certificate-authority: no such file ${join(dir, "ca.crt")}`,
    );
    expect(problem(config({}, { "certificate-authority-data": "bm90IHBlbQ==" }))).toBe(
      `${FILE}: clusters[0].cluster.certificate-authority-data: not base64 of PEM (expected -----BEGIN ... once decoded)`,
    );
    expect(
      problem(
        config(
          {},
          { "insecure-skip-tls-verify": true, "certificate-authority-data": b64(ca.certPem) },
        ),
      ),
    ).toBe(
      `${FILE}: clusters[0].cluster.insecure-skip-tls-verify: set together with a certificate-authority: keep one (kubectl refuses both too)`,
    );
  });
});

describe("users", () => {
  it("names a missing key file by its key path and absolute path", () => {
    writeFileSync(join(dir, "client.crt"), client.certPem);
    expect(problem(config({ "client-certificate": "client.crt", "client-key": "x/y.key" }))).toBe(
      `${FILE}: users[0].user.client-key: no such file ${join(dir, "x/y.key")}`,
    );
  });

  it("refuses a key that is not the certificate's", () => {
    const user = {
      "client-certificate-data": b64(client.certPem),
      "client-key-data": b64(otherClient.keyPem()),
    };
    expect(problem(config(user))).toBe(
      `${FILE}: users[0].user.client-key: does not match the client certificate`,
    );
    expect(problem(config({ "client-certificate-data": b64(client.certPem) }))).toBe(
      `${FILE}: users[0].user.client-key: missing: client-certificate needs it`,
    );
  });

  it("refuses a garbled key without quoting it", () => {
    const garbled =
      "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
    const msg = problem(
      config({ "client-certificate-data": b64(client.certPem), "client-key-data": b64(garbled) }),
    );
    expect(msg).toBe(
      `${FILE}: users[0].user.client-key-data: not a PEM private key (an encrypted key is not supported)`,
    );
  });

  it("refuses legacy auth providers, pointing to exec plugins", () => {
    expect(problem(config({ "auth-provider": { name: "gcp" } }))).toBe(
      `${FILE}: users[0].user.auth-provider: legacy auth providers are not supported; use an exec credential plugin (e.g. gke-gcloud-auth-plugin, kubelogin)`,
    );
  });

  it("refuses two ways to authenticate, without quoting either", () => {
    const msg = problem(config({ token: "tok-secret", username: "admin", password: "pw-secret" }));
    expect(msg).toBe(
      `${FILE}: users[0].user: has both a token and a username/password: keep one (kubectl refuses both too)`,
    );
    expect(problem(config({ username: "admin" }))).toBe(
      `${FILE}: users[0].user.password: missing: basic auth needs both a username and a password`,
    );
  });

  it("prefers tokenFile over token, resolved against the kubeconfig's folder", () => {
    expect(read(config({ token: "t", tokenFile: "tok" })).user).toEqual({
      tokenFile: { path: join(dir, "tok"), where: `${FILE}: users[0].user.tokenFile` },
    });
  });

  it("reads an exec block", () => {
    const exec = {
      apiVersion: "client.authentication.k8s.io/v1beta1",
      command: "bin/get-token",
      args: ["--region", "eu"],
      env: [{ name: "AWS_PROFILE", value: "edge" }],
      provideClusterInfo: true,
    };
    expect(read(config({ exec })).user.exec).toEqual({
      apiVersion: "client.authentication.k8s.io/v1beta1",
      command: join(dir, "bin/get-token"),
      args: ["--region", "eu"],
      env: [{ name: "AWS_PROFILE", value: "edge" }],
      cluster: { server: "https://dev.example:6443" },
      where: `${FILE}: users[0].user.exec`,
    });
    expect(read(config({ exec: { ...exec, command: "aws" } })).user.exec?.command).toBe("aws");
  });

  it("names each exec mistake", () => {
    const exec = { apiVersion: "client.authentication.k8s.io/v1", command: "aws" };
    expect(
      problem(config({ exec: { ...exec, apiVersion: "client.authentication.k8s.io/v1alpha1" } })),
    ).toBe(
      `${FILE}: users[0].user.exec.apiVersion: "client.authentication.k8s.io/v1alpha1" is not supported (use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)`,
    );
    expect(problem(config({ exec: { apiVersion: exec.apiVersion } }))).toBe(
      `${FILE}: users[0].user.exec.command: missing`,
    );
    expect(problem(config({ exec: { ...exec, env: [{ name: "X" }] } }))).toBe(
      `${FILE}: users[0].user.exec.env[0]: expected {name, value} strings`,
    );
    expect(problem(config({ exec: { ...exec, interactiveMode: "Always" } }))).toBe(
      `${FILE}: users[0].user.exec.interactiveMode: Always needs a terminal; lintel runs without one`,
    );
    expect(problem(config({ exec, token: "t" }))).toBe(
      `${FILE}: users[0].user.exec: set together with a token, password or client certificate: keep one`,
    );
  });

  it("refuses impersonation rather than ignore it", () => {
    expect(problem(config({ token: "t", as: "system:admin" }))).toBe(
      `${FILE}: users[0].user.as: impersonation is not supported`,
    );
  });
});
