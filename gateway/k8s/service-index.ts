// The Services of one namespace with their EndpointSlices, as live values per Service:
// a change to one EndpointSlice recomputes only the Service it belongs to. Shared by the
// io.l5d.k8s namers and the daemonset transformer.

import { Cell, ok, PENDING, type State, type Var } from "../naming/index.js";
import type { KubeApi, KubeWatch, WatchStatus } from "./api.js";
import { EndpointSlices, type EndpointSliceView, Services, type ServiceView } from "./resources.js";

/** A Service as routing sees it: undefined when it does not exist. */
export interface ServiceEntry {
  readonly service: ServiceView | undefined;
  /** Its EndpointSlices (none when `withSlices` is off). */
  readonly slices: readonly EndpointSliceView[];
}

const NO_SLICES: readonly EndpointSliceView[] = Object.freeze([]);

/** Entries kept for names nobody observes before they are dropped. */
const MAX_UNOBSERVED = 1000;

function sameEntry(a: ServiceEntry, b: ServiceEntry): boolean {
  if (a.service !== b.service || a.slices.length !== b.slices.length) return false;
  return a.slices.every((s, i) => s === b.slices[i]);
}

export class ServiceIndex {
  private readonly services: KubeWatch<ServiceView>;
  private readonly slices: KubeWatch<EndpointSliceView> | undefined;
  /** Slice keys by the Service they belong to, and the reverse. */
  private readonly slicesOf = new Map<string, Set<string>>();
  private readonly ownerOf = new Map<string, string>();
  private readonly cells = new Map<string, Cell<State<ServiceEntry>>>();
  private observed = 0;
  private stops: (() => void)[] = [];

  constructor(
    api: KubeApi,
    private readonly namespace: string,
    withSlices: boolean,
  ) {
    this.services = api.watch(Services, { namespace });
    this.slices = withSlices ? api.watch(EndpointSlices, { namespace }) : undefined;
  }

  /**
   * The live entry of Service `name`: pending until the namespace has been listed. Ask
   * for it inside a computation (not once, kept): an entry nobody observes may be dropped.
   */
  service(name: string): Var<State<ServiceEntry>> {
    let cell = this.cells.get(name);
    if (!cell) {
      const c: Cell<State<ServiceEntry>> = new Cell<State<ServiceEntry>>(PENDING, () => {
        if (this.observed++ === 0) this.retain();
        // Dropped while unobserved and observed again: it is the live one again.
        if (!this.cells.has(name)) this.cells.set(name, c);
        c.set(this.entry(name));
        return () => {
          if (--this.observed === 0) this.release();
        };
      });
      if (this.cells.size >= MAX_UNOBSERVED) this.forgetUnobserved();
      this.cells.set(name, c);
      cell = c;
    }
    return cell;
  }

  /** Drops the entries of names nobody observes (looked up once, e.g. a mistyped Host). */
  private forgetUnobserved(): void {
    for (const [name, c] of this.cells) if (!c.observed) this.cells.delete(name);
  }

  /** The state of the watches behind it, for the admin server. */
  status(): { services: WatchStatus; endpointslices: WatchStatus | undefined } {
    return { services: this.services.status(), endpointslices: this.slices?.status() };
  }

  private get synced(): boolean {
    return this.services.synced && (this.slices?.synced ?? true);
  }

  private entry(name: string): State<ServiceEntry> {
    if (!this.synced) return PENDING;
    const service = this.services.items.get(`${this.namespace}/${name}`);
    const keys = this.slicesOf.get(name);
    const slices: EndpointSliceView[] = [];
    if (keys && this.slices) {
      for (const k of keys) {
        const s = this.slices.items.get(k);
        if (s) slices.push(s);
      }
    }
    const next: ServiceEntry = { service, slices: slices.length > 0 ? slices : NO_SLICES };
    const prev = this.cells.get(name)?.sample();
    return prev?.status === "ok" && sameEntry(prev.value, next) ? prev : ok(next);
  }

  private retain(): void {
    if (this.stops.length > 0) return;
    this.stops.push(this.services.subscribe((changed) => this.onServices(changed)));
    const slices = this.slices;
    if (slices) {
      this.reindexAll();
      this.stops.push(slices.subscribe((changed) => this.onSlices(changed)));
    }
  }

  private release(): void {
    for (const stop of this.stops) stop();
    this.stops = [];
    this.slicesOf.clear();
    this.ownerOf.clear();
  }

  private onServices(changed: ReadonlySet<string> | undefined): void {
    if (changed === undefined) {
      this.refreshAll();
      return;
    }
    const prefix = `${this.namespace}/`;
    for (const key of changed) {
      if (key.startsWith(prefix)) this.refresh(key.slice(prefix.length));
    }
  }

  private onSlices(changed: ReadonlySet<string> | undefined): void {
    if (changed === undefined) {
      this.reindexAll();
      this.refreshAll();
      return;
    }
    const touched = new Set<string>();
    for (const key of changed) {
      const before = this.ownerOf.get(key);
      const after = this.slices!.items.get(key)?.service;
      if (before !== after) {
        if (before !== undefined) {
          this.slicesOf.get(before)?.delete(key);
          this.ownerOf.delete(key);
        }
        if (after !== undefined) this.index(key, after);
      }
      if (before !== undefined) touched.add(before);
      if (after !== undefined) touched.add(after);
    }
    for (const name of touched) this.refresh(name);
  }

  private index(sliceKey: string, service: string): void {
    let keys = this.slicesOf.get(service);
    if (!keys) {
      keys = new Set();
      this.slicesOf.set(service, keys);
    }
    keys.add(sliceKey);
    this.ownerOf.set(sliceKey, service);
  }

  private reindexAll(): void {
    this.slicesOf.clear();
    this.ownerOf.clear();
    for (const [key, s] of this.slices?.items ?? []) if (s.service) this.index(key, s.service);
  }

  private refresh(name: string): void {
    const cell = this.cells.get(name);
    if (cell?.observed) cell.set(this.entry(name));
  }

  private refreshAll(): void {
    for (const name of this.cells.keys()) this.refresh(name);
  }
}
