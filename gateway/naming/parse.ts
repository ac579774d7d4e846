// Parser for paths, prefixes, name trees, dentries and dtabs (Finagle's grammar).
//   dtab   := [dentry (';' dentry)*] [';']       '#' starts a comment to the end of the line
//   dentry := prefix '=>' tree
//   tree   := union ('|' union)*                 alternates
//   union  := weighted ('&' weighted)*           weighted union
//   weighted := [number '*'] simple
//   simple := '(' tree ')' | '!' | '~' | '$' | path
// Errors carry the offset so callers can point at the character with a caret.

import { ANY, type Dentry, Dtab, Prefix, type PrefixElem } from "./dtab.js";
import {
  alt,
  DEFAULT_WEIGHT,
  Empty,
  Fail,
  leaf,
  type NameTree,
  Neg,
  union,
  type Weighted,
  weighted,
} from "./name-tree.js";
import { isShowableChar, Path } from "./path.js";

export class NameParseError extends Error {
  constructor(
    readonly reason: string,
    readonly source: string,
    readonly offset: number,
  ) {
    super(`${reason} at ${describeOffset(source, offset)}`);
    this.name = "NameParseError";
  }

  /**
   * 1-based line and column of the error within the parsed text. An error at the end of
   * the input points just after the last non-blank character, not at a trailing newline.
   */
  get position(): { line: number; column: number } {
    return lineAndColumn(this.source, this.visibleOffset);
  }

  private get visibleOffset(): number {
    if (this.offset < this.source.length) return this.offset;
    return this.source.trimEnd().length;
  }

  /** The offending source line with a caret under the error. */
  get caret(): string {
    const { line, column } = this.position;
    const text = this.source.split("\n")[line - 1] ?? "";
    return `${text}\n${" ".repeat(column - 1)}^`;
  }
}

function lineAndColumn(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function describeOffset(source: string, offset: number): string {
  const what = offset >= source.length ? "end of input" : `'${source[offset]}'`;
  if (!source.includes("\n")) return `offset ${offset} (${what})`;
  const { line, column } = lineAndColumn(source, offset);
  return `line ${line}, column ${column} (${what})`;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  fail(reason: string, at = this.pos): never {
    throw new NameParseError(reason, this.src, at);
  }

  get atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  peek(): string | undefined {
    return this.src[this.pos];
  }

  /** Skips whitespace and `#` comments. */
  ws(): void {
    while (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      if (c === "#") {
        while (this.pos < this.src.length && this.src[this.pos] !== "\n") this.pos++;
      } else if (/\s/.test(c)) {
        this.pos++;
      } else {
        return;
      }
    }
  }

  expect(token: string, what = `'${token}'`): void {
    if (!this.src.startsWith(token, this.pos)) this.fail(`expected ${what}`);
    this.pos += token.length;
  }

  expectEnd(what: string): void {
    this.ws();
    if (!this.atEnd) this.fail(`unexpected '${this.peek()}' after ${what}`);
  }

  /** One path segment, with `\xNN` escapes decoded. */
  label(): string {
    const start = this.pos;
    const bytes: number[] = [];
    let text = "";
    let escapeStart = start;
    const flush = () => {
      if (bytes.length === 0) return;
      try {
        text += UTF8.decode(Uint8Array.from(bytes));
      } catch {
        // Segments are text; two different invalid byte sequences must not read as one name.
        this.fail("escaped bytes are not valid UTF-8", escapeStart);
      }
      bytes.length = 0;
    };
    while (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      if (c === "\\") {
        if (bytes.length === 0) escapeStart = this.pos;
        if (this.src[this.pos + 1] !== "x")
          this.fail("expected 'x' after '\\' (escapes are \\xNN)", this.pos + 1);
        const h1 = this.src[this.pos + 2];
        const h2 = this.src[this.pos + 3];
        if (!isHex(h1) || !isHex(h2))
          this.fail("expected two hex digits after '\\x'", this.pos + 2);
        bytes.push(Number.parseInt(`${h1}${h2}`, 16));
        this.pos += 4;
      } else if (isShowableChar(c)) {
        flush();
        text += c;
        this.pos++;
      } else {
        break;
      }
    }
    flush();
    if (this.pos === start) this.fail("expected a label character");
    return text;
  }

  path(): Path {
    if (this.peek() !== "/") this.fail("expected '/' to start a path");
    this.pos++;
    const segs: string[] = [];
    const c = this.peek();
    if (c === undefined || !(isShowableChar(c) || c === "\\")) return Path.empty;
    segs.push(this.label());
    while (this.peek() === "/") {
      this.pos++;
      segs.push(this.label());
    }
    return Path.fromTrusted(segs);
  }

  prefix(): Prefix {
    if (this.peek() !== "/") this.fail("expected '/' to start a prefix");
    this.pos++;
    const elems: PrefixElem[] = [];
    const first = this.peek();
    if (first === undefined || !(isShowableChar(first) || first === "\\" || first === "*")) {
      return Prefix.empty;
    }
    for (;;) {
      if (this.peek() === "*") {
        this.pos++;
        elems.push(ANY);
      } else {
        elems.push(this.label());
      }
      if (this.peek() !== "/") break;
      this.pos++;
    }
    return new Prefix(elems);
  }

  number(): number {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.peek() === ".") {
      this.pos++;
      if (!isDigit(this.peek())) this.fail("expected a digit after '.' in a weight");
      while (isDigit(this.peek())) this.pos++;
    }
    const n = Number(this.src.slice(start, this.pos));
    if (!Number.isFinite(n)) this.fail("weight is not a number", start);
    return n;
  }

  simple(): NameTree<Path> {
    this.ws();
    const c = this.peek();
    switch (c) {
      case "(": {
        this.pos++;
        const t = this.tree();
        this.ws();
        this.expect(")", "')' to close '('");
        return t;
      }
      case "!":
        this.pos++;
        return Fail;
      case "~":
        this.pos++;
        return Neg;
      case "$":
        this.pos++;
        return Empty;
      case "/":
        return leaf(this.path());
      case undefined:
        return this.fail("expected a name (a path, '!', '~', '$' or '(')");
      default:
        return this.fail("expected a name (a path, '!', '~', '$' or '(')");
    }
  }

  weighted(): Weighted<Path> {
    this.ws();
    const c = this.peek();
    if (isDigit(c) || c === ".") {
      const w = this.number();
      this.ws();
      this.expect("*", "'*' after the weight");
      return weighted(w, this.simple());
    }
    return weighted(DEFAULT_WEIGHT, this.simple());
  }

  union(): NameTree<Path> {
    const ws: Weighted<Path>[] = [this.weighted()];
    for (;;) {
      this.ws();
      if (this.peek() !== "&") break;
      this.pos++;
      ws.push(this.weighted());
    }
    if (ws.length === 1 && ws[0]!.weight === DEFAULT_WEIGHT) return ws[0]!.tree;
    return union(...ws);
  }

  tree(): NameTree<Path> {
    const ts: NameTree<Path>[] = [this.union()];
    for (;;) {
      this.ws();
      if (this.peek() !== "|") break;
      this.pos++;
      ts.push(this.union());
    }
    return ts.length === 1 ? ts[0]! : alt(...ts);
  }

  dentry(): Dentry {
    this.ws();
    const prefix = this.prefix();
    this.ws();
    this.expect("=>", "'=>' after the prefix");
    const dst = this.tree();
    return { prefix, dst };
  }

  dtab(): Dtab {
    const out: Dentry[] = [];
    this.ws();
    while (!this.atEnd) {
      if (this.peek() === ";") {
        this.pos++;
      } else {
        out.push(this.dentry());
        this.ws();
        if (!this.atEnd && this.peek() !== ";") this.fail("expected ';' between dentries");
      }
      this.ws();
    }
    return new Dtab(out);
  }
}

export function readPath(text: string): Path {
  const p = new Parser(text);
  const path = p.path();
  if (!p.atEnd) {
    p.fail(p.peek() === "/" ? "expected a label character" : `unexpected '${p.peek()}' in path`);
  }
  return path;
}

export function readPrefix(text: string): Prefix {
  const p = new Parser(text);
  const prefix = p.prefix();
  if (!p.atEnd) p.fail(`unexpected '${p.peek()}' in prefix`);
  return prefix;
}

export function readNameTree(text: string): NameTree<Path> {
  const p = new Parser(text);
  const t = p.tree();
  p.expectEnd("the name tree");
  return t;
}

export function readDentry(text: string): Dentry {
  const p = new Parser(text);
  const d = p.dentry();
  p.expectEnd("the dentry");
  return d;
}

export function readDtab(text: string): Dtab {
  return new Parser(text).dtab();
}
