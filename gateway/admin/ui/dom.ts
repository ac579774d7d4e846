// The few browser APIs the admin UI uses, typed here: the project's TypeScript program has
// no DOM library (adding one would retype Node's globals for the whole gateway), and
// tsconfig.ui.json type-checks the same files against these declarations.

/** An element, as far as the UI writes to it. */
export interface El {
  textContent: string | null;
  className: string;
  hidden: boolean;
  readonly dataset: Record<string, string | undefined>;
  append(...nodes: (El | string)[]): void;
  replaceChildren(...nodes: (El | string)[]): void;
  setAttribute(name: string, value: string): void;
  addEventListener(type: string, listener: (e: UiEvent) => void): void;
  querySelector(selector: string): El | null;
}

/** An input, textarea or select. */
export interface Field extends El {
  value: string;
}

export interface UiEvent {
  preventDefault(): void;
}

interface Doc {
  title: string;
  createElement(tag: string): El;
  getElementById(id: string): El | null;
}

interface Win {
  readonly location: { readonly pathname: string; readonly search: string };
  readonly sessionStorage: {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
    removeItem(key: string): void;
  };
  readonly history: { replaceState(state: null, unused: string, url: string): void };
}

const g = globalThis as unknown as { document: Doc; window: Win };
export const doc: Doc = g.document;
export const win: Win = g.window;

/** Attribute values; `false` and undefined leave the attribute out. */
export type Attrs = Readonly<Record<string, string | number | boolean | undefined>>;

/** An element with attributes and children: h("td", { "data-stat": "rps" }, "12.5"). */
export function h(tag: string, attrs: Attrs = {}, ...children: (El | string)[]): El {
  const el = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === undefined) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children);
  return el;
}

/** The element with `id`, which the page must have. */
export function byId<T extends El = El>(id: string): T {
  const el = doc.getElementById(id);
  if (!el) throw new Error(`the page has no element #${id}`);
  return el as T;
}
