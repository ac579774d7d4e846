// What the auth layers do to the request going upstream (field values made safe, cookies
// dropped one by one, an engine that cannot change fields refused rather than trusted)
// and the bounded cache their decisions are kept in.

import { describe, expect, it } from "vitest";
import { BoundedCache } from "../../../gateway/layers/auth/bounded-cache.js";
import {
  cookieValue,
  fieldValue,
  HeaderEdit,
  quoted,
  withoutCookie,
} from "../../../gateway/layers/auth/request-headers.js";
import { request } from "./support.js";

describe("request fields set by the auth layers", () => {
  it("send printable ASCII as it is and percent-encode the rest", () => {
    expect(fieldValue("alice@example.test; role=a b")).toBe("alice@example.test; role=a b");
    expect(fieldValue("evil\r\nx-admin: true")).toBe("evil%0D%0Ax-admin: true");
    expect(fieldValue("zoë 100%")).toBe("zo%C3%AB 100%25");
    expect(fieldValue("nul\u0000")).toBe("nul%00");
  });

  it("quote auth-params", () => {
    expect(quoted('a "b" \\c\r\n')).toBe('"a \\"b\\" \\\\c"');
  });

  it("read and drop one cookie", () => {
    const h = ["cookie", 'a=1; tok="xyz"', "cookie", "tok=second"];
    expect(cookieValue(h, "tok")).toBe("xyz");
    expect(cookieValue(h, "none")).toBeUndefined();
    expect(withoutCookie("a=1; tok=xyz;b=2", "tok")).toBe("a=1; b=2");
    expect(withoutCookie("tok=xyz", "tok")).toBe("");
  });

  it("replace the request's fields: drop, then add", () => {
    const req = request(["host", "a", "x-user", "forged", "cookie", "s=1; t=2", "x-user", "again"]);
    new HeaderEdit(new Set(["x-user"]), "t").apply(req, ["x-user", "alice"]);
    expect(req.ex.headers).toEqual(["host", "a", "cookie", "s=1", "x-user", "alice"]);
    const untouched = request(["host", "a"]);
    const before = untouched.ex.headers;
    new HeaderEdit(new Set()).apply(untouched, []);
    expect(untouched.ex.headers).toBe(before);
  });
});

describe("the bounded cache", () => {
  it("keeps entries until their time and drops the oldest when full", () => {
    const c = new BoundedCache<number>(2);
    c.set("a", 1, 100);
    c.set("b", 2, 200);
    expect(c.get("a", 99)).toBe(1);
    expect(c.get("a", 100)).toBeUndefined();
    c.set("a", 1, 300);
    c.set("c", 3, 300);
    expect(c.size).toBe(2);
    expect(c.get("b", 0)).toBeUndefined();
    expect(c.get("a", 0)).toBe(1);
    expect(c.get("c", 0)).toBe(3);
    const off = new BoundedCache<number>(0);
    off.set("a", 1, 100);
    expect(off.get("a", 0)).toBeUndefined();
  });
});
