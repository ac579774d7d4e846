// Path: a hierarchical name such as /svc/users, the unit every dtab and namer works on.
// Segments are kept as strings; `show` escapes characters Finagle does not print bare.

// Characters Finagle prints bare in a path segment: [0-9A-Za-z_:.#$%-]. A table, because
// every service name a request carries is shown once (binding cache keys).
const SHOWABLE = new Uint8Array(128);
for (const c of "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_:.#$%-")
  SHOWABLE[c.charCodeAt(0)] = 1;

/** True when `ch` may appear unescaped in a shown path segment. */
export function isShowableChar(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return ch.length === 1 && c < 128 && SHOWABLE[c] === 1;
}

function showSegment(seg: string): string {
  let plain = true;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c >= 128 || SHOWABLE[c] !== 1) {
      plain = false;
      break;
    }
  }
  if (plain) return seg;
  let out = "";
  for (const ch of seg) {
    if (isShowableChar(ch)) {
      out += ch;
    } else {
      for (const byte of Buffer.from(ch, "utf8")) out += `\\x${byte.toString(16).padStart(2, "0")}`;
    }
  }
  return out;
}

export class Path {
  static readonly empty = new Path([]);

  readonly segments: readonly string[];
  private shown: string | undefined;

  private constructor(segments: readonly string[]) {
    this.segments = segments;
  }

  /** Builds a path from raw segments (no parsing, no escapes). Empty segments are refused. */
  static of(...segments: string[]): Path {
    if (segments.length === 0) return Path.empty;
    for (const s of segments) {
      if (s.length === 0) throw new Error("a path segment may not be empty");
    }
    return new Path(segments);
  }

  /** Internal constructor for segments already known to be valid. */
  static fromTrusted(segments: readonly string[]): Path {
    return segments.length === 0 ? Path.empty : new Path(segments);
  }

  get size(): number {
    return this.segments.length;
  }

  get isEmpty(): boolean {
    return this.segments.length === 0;
  }

  startsWith(prefix: Path): boolean {
    const p = prefix.segments;
    if (p.length > this.segments.length) return false;
    for (let i = 0; i < p.length; i++) if (p[i] !== this.segments[i]) return false;
    return true;
  }

  take(n: number): Path {
    if (n >= this.segments.length) return this;
    return Path.fromTrusted(this.segments.slice(0, Math.max(0, n)));
  }

  drop(n: number): Path {
    if (n <= 0) return this;
    return Path.fromTrusted(this.segments.slice(n));
  }

  concat(other: Path): Path {
    if (other.isEmpty) return this;
    if (this.isEmpty) return other;
    return new Path([...this.segments, ...other.segments]);
  }

  equals(other: Path): boolean {
    return this === other || this.show === other.show;
  }

  /** The printable form, e.g. `/svc/users`; the empty path shows as `/`. */
  get show(): string {
    if (this.shown === undefined) {
      this.shown =
        this.segments.length === 0 ? "/" : `/${this.segments.map(showSegment).join("/")}`;
    }
    return this.shown;
  }

  toString(): string {
    return this.show;
  }

  toJSON(): string {
    return this.show;
  }
}
