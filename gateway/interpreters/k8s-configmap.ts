// io.l5d.k8s.configMap: the dtab comes from one key of a ConfigMap, watched; an edit
// applies without a restart. A new version that does not parse is logged and the last
// good dtab keeps routing. Its dentries come before the router's dtab.

import { def, nonEmptyString, object, opt, port, req } from "../config/schema.js";
import type { KubeApi } from "../k8s/api.js";
import { ConfigMaps } from "../k8s/resources.js";
import type { Logger } from "../log.js";
import {
  Cell,
  type Dtab,
  failed,
  NameParseError,
  ok,
  PENDING,
  readDtab,
  type State,
} from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { DtabInterpreter } from "./default.js";

export interface ConfigMapKey {
  readonly namespace: string;
  readonly name: string;
  readonly filename: string;
}

/** The dtab in a ConfigMap key as a live value; `stop` ends the watch. */
export function watchConfigMapDtab(
  api: KubeApi,
  key: ConfigMapKey,
  log: Logger,
): { dtab: Cell<State<Dtab>>; stop(): void } {
  const where = `ConfigMap ${key.namespace}/${key.name} key ${key.filename}`;
  const watch = api.watch(ConfigMaps, {
    namespace: key.namespace,
    fieldSelector: `metadata.name=${key.name}`,
  });
  const cell = new Cell<State<Dtab>>(PENDING);
  let lastText: string | undefined;
  const update = () => {
    if (!watch.synced) return;
    const text = watch.items.get(`${key.namespace}/${key.name}`)?.data[key.filename];
    if (text === lastText && cell.sample().status !== "pending") return;
    lastText = text;
    const current = cell.sample();
    if (text === undefined) {
      // Linkerd 1 routed with an empty dtab; lintel keeps the last good one, louder.
      if (current.status === "ok") {
        log.error("the dtab's ConfigMap or key is gone; keeping the last good dtab", {
          source: where,
        });
      } else {
        log.warn("the dtab's ConfigMap or key does not exist; using an empty dtab", {
          source: where,
        });
        cell.set(ok(readDtab("")));
      }
      return;
    }
    let next: Dtab;
    try {
      next = readDtab(text);
    } catch (e) {
      const reason =
        e instanceof NameParseError
          ? `line ${e.position.line}, column ${e.position.column}: ${e.reason}\n${e.caret}`
          : (e as Error).message;
      if (current.status === "ok") {
        log.error("dtab edit rejected; keeping the last good dtab", {
          source: where,
          error: reason,
        });
      } else {
        log.error("the dtab does not parse", { source: where, error: reason });
        cell.set(failed(`${where}: invalid dtab: ${reason}`));
      }
      return;
    }
    if (current.status !== "ok" || current.value.show !== next.show) {
      log.info("dtab from the ConfigMap applied", { source: where, dentries: next.size });
      cell.set(ok(next));
    }
  };
  const stop = watch.subscribe(update);
  update();
  return { dtab: cell, stop };
}

export const k8sConfigMapInterpreter = definePlugin({
  category: "interpreter",
  kind: "io.l5d.k8s.configMap",
  schema: object({
    host: opt(nonEmptyString("a host name or IP address")),
    port: opt(port()),
    namespace: def(nonEmptyString("a namespace"), "default"),
    name: req(nonEmptyString("a ConfigMap name")),
    filename: req(nonEmptyString("a key of the ConfigMap")),
  }),
  create(config, ctx) {
    const w = watchConfigMapDtab(
      ctx.kube({ host: config.host, port: config.port }),
      config,
      ctx.log,
    );
    return new DtabInterpreter(ctx, w.dtab, w.stop);
  },
});
