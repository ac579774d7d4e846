// `responseHeaders`: fields set on, added to or removed from the responses of a server or
// a service prefix (security headers, an upstream's Server field), and HSTS: a
// Strict-Transport-Security field on the responses to requests that came over TLS, and
// only those (RFC 6797 §7.2: a host sends it on secure transport only). `set` and `remove`
// drop the upstream's fields of that name from a forwarded response; lintel's own answers
// (errors, redirects) get the fields set and added, and keep their own.

import {
  boolean,
  def,
  type INVALID,
  integer,
  list,
  object,
  oneOrList,
  opt,
  record,
  refine,
  string,
  transform,
} from "../../config/schema.js";
import { definePlugin, type ValidationProblem } from "../../plugins/registry.js";
import type { ArrivingRequest, ServerLayer } from "../../routing/server-stack/layer.js";

/** RFC 9110's token: what a field name is made of. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;
/** A field value: visible characters, spaces and tabs (no CR, LF or NUL). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Fields a rule may not touch: the message's framing and connection (hop-by-hop) fields,
 * and the body's coding, which the upstream or the compression layer gives.
 */
const UNTOUCHABLE: ReadonlySet<string> = new Set([
  "connection",
  "content-encoding",
  "content-length",
  "content-range",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const STS = "strict-transport-security";

/** RFC 6797's max-age, a year: what the HSTS preload list asks for at least. */
const PRELOAD_MIN_AGE_SECS = 31_536_000;

const fieldValue = transform(
  refine(string("a field value"), (v) =>
    FIELD_VALUE.test(v) ? undefined : "a field value cannot hold CR, LF, NUL or other controls",
  ),
  (v) => v.trim(),
);

const schema = object({
  /** Fields every response gets, replacing the upstream's of that name. */
  set: opt(record(fieldValue)),
  /** Fields every response gets besides the upstream's of that name (a list: several). */
  add: opt(record(oneOrList(fieldValue))),
  /** Upstream fields dropped. */
  remove: opt(list(string("a field name"))),
  /** Strict-Transport-Security on the responses to TLS requests. */
  hsts: opt(
    object({
      maxAgeSecs: def(integer({ min: 0 }), PRELOAD_MIN_AGE_SECS),
      includeSubDomains: def(boolean(), false),
      preload: def(boolean(), false),
    }),
  ),
});

type ResponseHeadersConfig = Exclude<ReturnType<typeof schema.decode>, typeof INVALID>;
type Hsts = NonNullable<ResponseHeadersConfig["hsts"]>;

/** The Strict-Transport-Security value of an `hsts` block. */
export function hstsValue(h: Hsts): string {
  return `max-age=${h.maxAgeSecs}${h.includeSubDomains ? "; includeSubDomains" : ""}${h.preload ? "; preload" : ""}`;
}

function validate(config: ResponseHeadersConfig): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  const { set = {}, add = {}, remove = [], hsts } = config;
  if (Object.keys(set).length + Object.keys(add).length + remove.length === 0 && !hsts)
    problems.push("responseHeaders needs set, add, remove or hsts");
  /** Which rule names each field (lower case), to refuse a field named twice. */
  const named = new Map<string, string>();
  const check = (rule: string, name: string, at: string) => {
    const lower = name.toLowerCase();
    if (!FIELD_NAME.test(name))
      problems.push({ field: at, message: `${JSON.stringify(name)} is not a field name` });
    else if (UNTOUCHABLE.has(lower))
      problems.push({
        field: at,
        message: `${lower} frames the message or its body: lintel does not let a rule change it`,
      });
    else if (lower === STS && hsts)
      problems.push({ field: at, message: `${STS} is what hsts sends: name it in one place` });
    const before = named.get(lower);
    if (before !== undefined)
      problems.push({ field: at, message: `${lower} is named twice (in ${before} and ${rule})` });
    named.set(lower, rule);
  };
  for (const name of Object.keys(set)) check("set", name, `set.${name}`);
  for (const name of Object.keys(add)) check("add", name, `add.${name}`);
  for (const [i, name] of remove.entries()) check("remove", name, `remove[${i}]`);
  if (hsts?.preload && (!hsts.includeSubDomains || hsts.maxAgeSecs < PRELOAD_MIN_AGE_SECS))
    problems.push({
      field: "hsts.preload",
      message: `preload needs includeSubDomains: true and maxAgeSecs of at least ${PRELOAD_MIN_AGE_SECS} (a year), as the preload list requires`,
    });
  return problems;
}

export class ResponseHeadersLayer implements ServerLayer {
  readonly name = "responseHeaders";
  /** What a response gets (flat): `set` and `add`; on TLS, and Strict-Transport-Security. */
  private readonly fields: readonly string[];
  private readonly tlsFields: readonly string[];
  /** The upstream's fields that go: `remove` and the names set; on TLS, and HSTS's. */
  private readonly drop: ReadonlySet<string>;
  private readonly tlsDrop: ReadonlySet<string>;

  constructor(config: ResponseHeadersConfig) {
    const fields: string[] = [];
    const drop = new Set<string>();
    for (const [name, value] of Object.entries(config.set ?? {})) {
      fields.push(name.toLowerCase(), value);
      drop.add(name.toLowerCase());
    }
    for (const [name, values] of Object.entries(config.add ?? {}))
      for (const v of values) fields.push(name.toLowerCase(), v);
    for (const name of config.remove ?? []) drop.add(name.toLowerCase());
    this.fields = fields;
    this.drop = drop;
    const hsts = config.hsts;
    this.tlsFields = hsts ? [...fields, STS, hstsValue(hsts)] : fields;
    this.tlsDrop = hsts ? new Set([...drop, STS]) : drop;
  }

  arrive(req: ArrivingRequest): boolean {
    const tls = req.ex.secure;
    const fields = tls ? this.tlsFields : this.fields;
    const drop = tls ? this.tlsDrop : this.drop;
    if (fields.length === 0 && drop.size === 0) return false;
    req.responseHeaders ??= [];
    const added = req.responseHeaders;
    if (drop.size > 0) {
      // What an earlier layer added under a name this one sets or removes goes too.
      for (let i = added.length - 2; i >= 0; i -= 2) if (drop.has(added[i]!)) added.splice(i, 2);
      if (req.dropResponseFields === undefined) req.dropResponseFields = new Set(drop);
      else for (const name of drop) req.dropResponseFields.add(name);
    }
    for (const f of fields) added.push(f);
    return false;
  }
}

export const responseHeadersLayer = definePlugin({
  category: "serverLayer",
  kind: "responseHeaders",
  schema,
  validate,
  create: (config) => new ResponseHeadersLayer(config),
});
