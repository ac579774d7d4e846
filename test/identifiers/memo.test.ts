// Identifications made once per key (a Host value), bounded per identifier.

import { describe, expect, it } from "vitest";
import {
  type Identification,
  IdentificationMemo,
  identified,
} from "../../gateway/identifiers/identifier.js";
import { Path } from "../../gateway/naming/index.js";

describe("IdentificationMemo", () => {
  it("makes a key's identification once and hands the same one back", () => {
    let made = 0;
    const memo = new IdentificationMemo((k) => {
      made++;
      return identified(Path.fromTrusted(["svc", k]));
    });
    const a = memo.get("web");
    expect(memo.get("web")).toBe(a);
    expect(made).toBe(1);
    expect((a as Extract<Identification, { ok: true }>).dst.show).toBe("/svc/web");
  });

  it("drops the oldest key past its bound", () => {
    const made: string[] = [];
    const memo = new IdentificationMemo((k) => {
      made.push(k);
      return identified(Path.fromTrusted([k]));
    }, 2);
    memo.get("a");
    memo.get("b");
    memo.get("c"); // a goes
    memo.get("b");
    memo.get("a"); // made again; b goes
    expect(made).toEqual(["a", "b", "c", "a"]);
    memo.get("c");
    memo.get("b");
    expect(made).toEqual(["a", "b", "c", "a", "b"]);
  });
});
