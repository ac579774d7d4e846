// Observable values. A Var holds a value that changes over time; an Activity is a Var
// of a State (pending | ok | failed). Namers publish addresses and name trees this way,
// and `computed` derives a value from others, recomputing only when one of them changes.

export type Listener<T> = (value: T) => void;

export interface Var<T> {
  /** The current value. */
  sample(): T;
  /**
   * Calls `listener` on every later change (not with the current value). Returns the
   * function that stops observing. A Var may start its work (a watch, a DNS poll) when
   * first observed and stop it when the last observer leaves.
   */
  observe(listener: Listener<T>): () => void;
  /** True for values that never change; readers need not observe them. */
  readonly constant?: boolean;
}

export type State<T> =
  | { readonly status: "pending" }
  | { readonly status: "ok"; readonly value: T }
  | { readonly status: "failed"; readonly error: Error };

export type Activity<T> = Var<State<T>>;

export const PENDING: State<never> = Object.freeze({ status: "pending" });

export function ok<T>(value: T): State<T> {
  return { status: "ok", value };
}

export function failed(error: Error | string): State<never> {
  return { status: "failed", error: typeof error === "string" ? new Error(error) : error };
}

const noop = () => {};

class ConstVar<T> implements Var<T> {
  readonly constant = true;
  constructor(private readonly value: T) {}
  sample(): T {
    return this.value;
  }
  observe(): () => void {
    return noop;
  }
}

export function constant<T>(value: T): Var<T> {
  return new ConstVar(value);
}

/** An Activity that is ok with `value` forever. */
export function constantOk<T>(value: T): Activity<T> {
  return new ConstVar(ok(value));
}

/**
 * A settable Var. `onActive` runs when the first observer arrives and returns the
 * function run when the last one leaves (start/stop of whatever feeds the cell).
 */
export class Cell<T> implements Var<T> {
  private readonly listeners = new Set<Listener<T>>();
  private stop: (() => void) | undefined;

  constructor(
    private value: T,
    private readonly onActive?: (cell: Cell<T>) => () => void,
  ) {}

  sample(): T {
    return this.value;
  }

  get observed(): boolean {
    return this.listeners.size > 0;
  }

  set(value: T): void {
    if (Object.is(value, this.value)) return;
    this.value = value;
    for (const l of [...this.listeners]) l(value);
  }

  observe(listener: Listener<T>): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1 && this.onActive && this.stop === undefined) {
      this.stop = this.onActive(this);
    }
    return () => {
      if (!this.listeners.delete(listener)) return;
      if (this.listeners.size === 0 && this.stop !== undefined) {
        const stop = this.stop;
        this.stop = undefined;
        stop();
      }
    };
  }
}

/** A Var whose value is `f` of another's; `f` runs once per source value. */
export function mapVar<A, B>(source: Var<A>, f: (a: A) => B): Var<B> {
  let lastIn: A | undefined;
  let lastOut: B | undefined;
  let primed = false;
  const apply = (a: A): B => {
    if (!primed || !Object.is(a, lastIn)) {
      lastIn = a;
      lastOut = f(a);
      primed = true;
    }
    return lastOut as B;
  };
  if (source.constant) return constant(f(source.sample()));
  return {
    sample: () => apply(source.sample()),
    observe: (listener) => source.observe((a) => listener(apply(a))),
  };
}

/** Reads a Var's current value on behalf of a computation, recording it as a dependency. */
export type Read = <T>(v: Var<T>) => T;

/** Reads without recording: for one-off snapshots. */
export const sampleRead: Read = (v) => v.sample();

/**
 * A Var computed from others. While observed it subscribes to exactly the Vars the
 * last computation read and recomputes when one changes; unobserved, `sample()`
 * computes a fresh snapshot. Observers are told only when `equals` says the value changed.
 */
export function computed<T>(
  compute: (read: Read) => T,
  equals: (a: T, b: T) => boolean = Object.is,
): Var<T> {
  return new Computed(compute, equals);
}

class Computed<T> implements Var<T> {
  private readonly listeners = new Set<Listener<T>>();
  private deps = new Map<Var<unknown>, () => void>();
  private current: { value: T } | undefined;
  private computing = false;
  private dirty = false;

  constructor(
    private readonly compute: (read: Read) => T,
    private readonly equals: (a: T, b: T) => boolean,
  ) {}

  sample(): T {
    if (this.current !== undefined) return this.current.value;
    return this.compute(sampleRead);
  }

  observe(listener: Listener<T>): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.refresh();
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      for (const stop of this.deps.values()) stop();
      this.deps.clear();
      this.current = undefined;
    };
  }

  private readonly onDepChange = () => {
    if (this.listeners.size === 0) return;
    if (this.computing) {
      this.dirty = true;
      return;
    }
    this.refresh();
  };

  private refresh(): void {
    this.computing = true;
    let next: T;
    try {
      do {
        this.dirty = false;
        const seen = new Set<Var<unknown>>();
        const read: Read = (v) => {
          if (!v.constant) {
            seen.add(v);
            if (!this.deps.has(v)) this.deps.set(v, v.observe(this.onDepChange));
          }
          return v.sample();
        };
        next = this.compute(read);
        for (const [v, stop] of this.deps) {
          if (!seen.has(v)) {
            stop();
            this.deps.delete(v);
          }
        }
      } while (this.dirty);
    } finally {
      this.computing = false;
    }
    const prev = this.current;
    // An equal value keeps the one readers already hold (the same bound names).
    if (prev !== undefined && this.equals(prev.value, next)) return;
    this.current = { value: next };
    if (prev !== undefined) {
      for (const l of [...this.listeners]) l(next);
    }
  }
}

/**
 * Waits until an Activity leaves pending (observing it meanwhile so lazy sources start),
 * or until `signal` aborts, and returns the state it had then.
 */
export function settle<T>(activity: Activity<T>, signal?: AbortSignal): Promise<State<T>> {
  return new Promise((resolve) => {
    let stop: () => void = noop;
    const done = (s: State<T>) => {
      stop();
      signal?.removeEventListener("abort", onAbort);
      resolve(s);
    };
    const onAbort = () => done(activity.sample());
    stop = activity.observe((s) => {
      if (s.status !== "pending") done(s);
    });
    const now = activity.sample();
    if (now.status !== "pending") return done(now);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
