// io.l5d.k8s.configMap: the dtab from a ConfigMap key, applied as it changes; a bad edit
// keeps the last good dtab.

import { afterEach, describe, expect, it } from "vitest";
import { k8sConfigMapInterpreter } from "../../gateway/interpreters/k8s-configmap.js";
import { ConfigMaps, type ConfigMapView } from "../../gateway/k8s/resources.js";
import { createLogger, type Level } from "../../gateway/log.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { globalLookup } from "../../gateway/namers/mount.js";
import { Dtab, readDtab, readPath } from "../../gateway/naming/index.js";
import { decode, fakeDns, fakeResolver, Observations, stateText } from "../namers/helpers.js";
import { FakeKube, pluginContext } from "../support/fake-kube.js";

const obs = new Observations();
afterEach(() => obs.stopAll());

const global = createGlobalNamer(fakeResolver(fakeDns().lookup));

function setup() {
  const kube = new FakeKube();
  const logged: string[] = [];
  const log = createLogger({
    level: "info",
    sink: (line: string, level: Level) => logged.push(`${level} ${line}`),
  });
  const i = k8sConfigMapInterpreter.create(
    decode(k8sConfigMapInterpreter, { namespace: "routing", name: "dtabs", filename: "edge.dtab" }),
    {
      ...pluginContext({ kube }),
      log,
      label: "edge",
      routerDtab: readDtab(""),
      namers: globalLookup(global),
      transformers: [],
    },
  );
  const cm = (text: string | undefined): ConfigMapView => ({
    namespace: "routing",
    name: "dtabs",
    data: text === undefined ? {} : { "edge.dtab": text },
  });
  return { kube, i, cm, logged };
}

describe("io.l5d.k8s.configMap", () => {
  it("binds with the ConfigMap's dtab once listed, and follows edits", () => {
    const { kube, i, cm, logged } = setup();
    const b = obs.live(i.bind(Dtab.empty, readPath("/svc/web")));
    expect(b.current().status).toBe("pending");
    kube.set(ConfigMaps, cm("/svc => /$/inet/127.0.0.1/8080;"));
    kube.markSynced(ConfigMaps);
    expect(stateText(b.current())).toBe("/$/inet/127.0.0.1/8080 residual=/web");
    kube.set(ConfigMaps, cm("/svc => /$/inet/127.0.0.1/9090;"));
    expect(stateText(b.current())).toBe("/$/inet/127.0.0.1/9090 residual=/web");
    expect(logged.some((l) => l.includes("dtab from the ConfigMap applied"))).toBe(true);
  });

  it("keeps the last good dtab when an edit does not parse, and says where", () => {
    const { kube, i, cm, logged } = setup();
    const b = obs.live(i.bind(Dtab.empty, readPath("/svc/web")));
    kube.set(ConfigMaps, cm("/svc => /$/inet/127.0.0.1/8080;"));
    kube.markSynced(ConfigMaps);
    kube.set(ConfigMaps, cm("/svc => => nope"));
    expect(stateText(b.current())).toBe("/$/inet/127.0.0.1/8080 residual=/web");
    const err = logged.find((l) => l.startsWith("error"));
    expect(err).toContain("dtab edit rejected; keeping the last good dtab");
    expect(err).toContain("ConfigMap routing/dtabs key edge.dtab");
    expect(err).toContain("line 1");
  });

  it("fails names with the reason when the first version does not parse", () => {
    const { kube, i, cm } = setup();
    const b = obs.live(i.bind(Dtab.empty, readPath("/svc/web")));
    kube.set(ConfigMaps, cm("/svc =>"));
    kube.markSynced(ConfigMaps);
    const s = b.current();
    expect(s.status).toBe("failed");
    expect(s.status === "failed" && s.error.message).toContain(
      "ConfigMap routing/dtabs key edge.dtab: invalid dtab",
    );
  });

  it("routes with an empty dtab while the ConfigMap is missing, keeps the last good when it goes", () => {
    const { kube, i, cm, logged } = setup();
    const b = obs.live(i.bind(Dtab.empty, readPath("/svc/web")));
    kube.markSynced(ConfigMaps);
    expect(b.current()).toEqual({ status: "ok", value: { kind: "neg" } });
    expect(logged.some((l) => l.startsWith("warn") && l.includes("does not exist"))).toBe(true);
    kube.set(ConfigMaps, cm("/svc => /$/inet/127.0.0.1/2;"));
    expect(stateText(b.current())).toBe("/$/inet/127.0.0.1/2 residual=/web");
    kube.delete(ConfigMaps, "routing/dtabs");
    expect(stateText(b.current())).toBe("/$/inet/127.0.0.1/2 residual=/web");
    expect(logged.some((l) => l.startsWith("error") && l.includes("is gone"))).toBe(true);
  });

  it("watches only its ConfigMap", () => {
    const { kube } = setup();
    expect(kube.refs).toEqual([{ host: undefined, port: undefined }]);
    expect(
      kube.watch(ConfigMaps, { namespace: "routing", fieldSelector: "metadata.name=dtabs" })
        .subscribers,
    ).toBe(1);
  });
});
