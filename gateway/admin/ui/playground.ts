// The dtab playground (/dtab): how a router resolves a path, and what an l5d-dtab
// override would change, the two trees side by side with the override's new lines marked.
// It only asks /delegator.json; routing never changes.

import { getJson } from "./api.js";
import { boundIds, type DelegationNode, type TreeLine, treeLines } from "./delegation.js";
import { byId, type El, type Field, h, win } from "./dom.js";
import { showError } from "./status.js";

interface UiIndex {
  readonly routers: readonly { readonly label: string; readonly dstPrefix: string }[];
}

function delegate(router: string, path: string, dtab: string): Promise<DelegationNode> {
  const q = new URLSearchParams({ namespace: router, path });
  if (dtab.trim() !== "") q.set("dtab", dtab);
  return getJson<DelegationNode>(`/delegator.json?${q}`);
}

function treeView(lines: readonly TreeLine[], marked: ReadonlySet<string>): El {
  return h(
    "ol",
    { class: "tree" },
    ...lines.map((l) =>
      h(
        "li",
        { "data-depth": Math.min(l.depth, 9), class: marked.has(l.text) ? "changed" : undefined },
        marked.has(l.text) ? h("mark", {}, l.text) : l.text,
      ),
    ),
  );
}

function bindingText(root: DelegationNode): string {
  const ids = boundIds(root.binding);
  if (ids.length > 0) return ids.join(", ");
  return root.binding?.type === "exception"
    ? `fails: ${root.binding.message ?? ""}`
    : `does not bind (${root.binding?.type ?? "no binding"})`;
}

function column(id: string, title: string, root: DelegationNode, marked: ReadonlySet<string>): El {
  return h(
    "section",
    { id, "aria-label": title },
    h("h3", {}, title),
    h("p", {}, "Binds to ", h("strong", { "data-binding": "" }, bindingText(root))),
    treeView(treeLines(root), marked),
  );
}

async function resolve(router: string, path: string, override: string): Promise<El[]> {
  const base = await delegate(router, path, "");
  if (override.trim() === "") return [column("tree-base", "Router dtab", base, new Set())];
  const withOverride = await delegate(router, path, override);
  const before = new Set(treeLines(base).map((l) => l.text));
  const added = new Set(
    treeLines(withOverride)
      .map((l) => l.text)
      .filter((t) => !before.has(t)),
  );
  const changed = bindingText(base) !== bindingText(withOverride);
  return [
    h(
      "p",
      { id: "override-effect", role: "status" },
      changed
        ? `With the override the path binds to ${bindingText(withOverride)} instead of ${bindingText(base)}.`
        : "The override does not change where the path binds.",
    ),
    h(
      "div",
      { class: "side-by-side" },
      column("tree-base", "Router dtab", base, new Set()),
      column("tree-override", "With l5d-dtab", withOverride, added),
    ),
  ];
}

export async function startPlayground(): Promise<void> {
  const form = byId("playground");
  form.hidden = false;
  const routerField = byId<Field>("pg-router");
  const pathField = byId<Field>("pg-path");
  const dtabField = byId<Field>("pg-dtab");
  const header = byId("pg-header");
  const out = byId("content");
  const query = new URLSearchParams(win.location.search);

  const run = async () => {
    const router = routerField.value;
    const path = pathField.value.trim();
    const dtab = dtabField.value.trim();
    // Linkerd's l5d-dtab header takes dentries separated by ";" on one line.
    header.textContent = dtab
      ? `l5d-dtab: ${dtab
          .split(/\s*[;\n]\s*/)
          .filter(Boolean)
          .join("; ")}`
      : "";
    win.history.replaceState(null, "", `/dtab?${new URLSearchParams({ router, path, dtab })}`);
    try {
      out.replaceChildren(...(await resolve(router, path, dtab)));
      showError(undefined);
    } catch (e) {
      out.replaceChildren();
      showError(e);
    }
  };

  try {
    const index = await getJson<UiIndex>("/admin/ui.json");
    routerField.replaceChildren(
      ...index.routers.map((r) => h("option", { value: r.label }, `${r.label} (${r.dstPrefix})`)),
    );
    const wanted = query.get("router");
    if (wanted && index.routers.some((r) => r.label === wanted)) routerField.value = wanted;
    if (!pathField.value)
      pathField.value = query.get("path") ?? `${index.routers[0]?.dstPrefix ?? "/svc"}/`;
    dtabField.value = query.get("dtab") ?? "";
  } catch (e) {
    showError(e);
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void run();
  });
  if (query.get("path")) await run();
}
