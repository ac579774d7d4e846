// A small authoritative DNS server for tests, over UDP on 127.0.0.1 (an ephemeral port),
// written with node:dgram. The test decides at run time what each name answers:
//
//   const dns = await DnsServer.start();          // dns.address is "127.0.0.1:<port>"
//   dns.set("api.test", { a: ["127.0.0.2"], ttl: 2 });   // A (and/or AAAA) records, TTL in s
//   dns.nxdomain("gone.test");                     // NXDOMAIN (also what unknown names get)
//   dns.servfail("broken.test");                   // SERVFAIL
//   dns.silent("slow.test");                       // no answer at all (the client times out)
//   dns.garbage("odd.test");                       // a reply that is not DNS
//   dns.queries("api.test");                       // queries seen for the name (any type)
//   dns.queries("api.test", "AAAA");               // ... of one type
//   await dns.close();
//
// A name that exists but has no records of the asked type gets an empty NOERROR answer
// ("no data"). Names match case-insensitively, with or without the trailing dot. Only UDP:
// answers are small and never truncated, so resolvers have no reason to retry over TCP.

import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";

export type RecordType = "A" | "AAAA";

export interface Records {
  readonly a?: readonly string[];
  readonly aaaa?: readonly string[];
  /** The TTL of every record, in seconds (default 60). */
  readonly ttl?: number;
}

type Behaviour =
  | { readonly kind: "records"; readonly records: Records }
  | { readonly kind: "nxdomain" | "servfail" | "silent" | "garbage" };

const TYPE_CODES: Record<RecordType, number> = { A: 1, AAAA: 28 };
const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

export class DnsServer {
  private readonly names = new Map<string, Behaviour>();
  private readonly seen: Array<{ readonly name: string; readonly type: number }> = [];

  private constructor(
    private readonly socket: Socket,
    /** The UDP port the server listens on (127.0.0.1). */
    readonly port: number,
  ) {
    socket.on("message", (msg, from) => this.answer(msg, from));
  }

  /** Starts a server on 127.0.0.1 with an ephemeral port. */
  static async start(): Promise<DnsServer> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new DnsServer(socket, socket.address().port);
  }

  /** `127.0.0.1:<port>`, as a resolver's server list wants it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** From now on `name` answers these records (a type without records answers "no data"). */
  set(name: string, records: Records): void {
    for (const ip of records.a ?? []) if (!isIPv4(ip)) throw new Error(`not IPv4: ${ip}`);
    for (const ip of records.aaaa ?? []) if (!isIPv6(ip)) throw new Error(`not IPv6: ${ip}`);
    this.names.set(key(name), { kind: "records", records });
  }

  /** From now on `name` does not exist. */
  nxdomain(name: string): void {
    this.names.set(key(name), { kind: "nxdomain" });
  }

  /** From now on queries for `name` get SERVFAIL. */
  servfail(name: string): void {
    this.names.set(key(name), { kind: "servfail" });
  }

  /** From now on queries for `name` get no answer. */
  silent(name: string): void {
    this.names.set(key(name), { kind: "silent" });
  }

  /** From now on queries for `name` get bytes that are not a DNS message. */
  garbage(name: string): void {
    this.names.set(key(name), { kind: "garbage" });
  }

  /** How many queries for `name` arrived (of `type` only, when given). */
  queries(name: string, type?: RecordType): number {
    const k = key(name);
    const code = type === undefined ? undefined : TYPE_CODES[type];
    return this.seen.filter((q) => q.name === k && (code === undefined || q.type === code)).length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(msg: Buffer, from: RemoteInfo): void {
    const query = parseQuery(msg);
    if (query) this.seen.push({ name: query.name, type: query.type });
    const reply = query
      ? this.response(msg, query)
      : msg.length >= 12
        ? header(msg, RCODE_FORMERR, 0, 0)
        : undefined;
    // The client may be gone already (a test that ended); nothing to do about it.
    if (reply) this.socket.send(reply, from.port, from.address, () => {});
  }

  private response(msg: Buffer, query: Query): Buffer | undefined {
    const b: Behaviour = this.names.get(query.name) ?? { kind: "nxdomain" };
    const withRcode = (rcode: number) => Buffer.concat([header(msg, rcode, 1, 0), query.question]);
    switch (b.kind) {
      case "silent":
        return undefined;
      case "garbage":
        return Buffer.from("this is not a DNS message");
      case "nxdomain":
        return withRcode(RCODE_NXDOMAIN);
      case "servfail":
        return withRcode(RCODE_SERVFAIL);
      case "records": {
        if (query.type !== TYPE_CODES.A && query.type !== TYPE_CODES.AAAA) {
          return withRcode(RCODE_NOTIMP);
        }
        const ips = (query.type === TYPE_CODES.A ? b.records.a : b.records.aaaa) ?? [];
        const ttl = b.records.ttl ?? 60;
        const answers = ips.map((ip) => resourceRecord(query.type, ttl, ip));
        return Buffer.concat([
          header(msg, RCODE_NOERROR, 1, answers.length),
          query.question,
          ...answers,
        ]);
      }
    }
  }
}

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

interface Query {
  readonly name: string;
  readonly type: number;
  /** The question section as received, echoed in the answer. */
  readonly question: Buffer;
}

/** The first question of a query, or undefined when the message is not a query we read. */
function parseQuery(msg: Buffer): Query | undefined {
  if (msg.length < 12 || (msg[2]! & 0x80) !== 0 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    const len = msg[at];
    if (len === undefined || len > 63) return undefined;
    at++;
    if (len === 0) break;
    if (at + len > msg.length) return undefined;
    labels.push(msg.toString("latin1", at, at + len));
    at += len;
  }
  if (at + 4 > msg.length) return undefined;
  const type = msg.readUInt16BE(at);
  return { name: key(labels.join(".")), type, question: msg.subarray(12, at + 4) };
}

/** A response header for `query`: its id, QR and AA set, RD copied, one question. */
function header(query: Buffer, rcode: number, questions: number, answers: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(query.readUInt16BE(0), 0);
  const rd = query[2]! & 0x01;
  h[2] = 0x80 | 0x04 | rd; // QR, AA, RD
  h[3] = rcode & 0x0f;
  h.writeUInt16BE(questions, 4);
  h.writeUInt16BE(answers, 6);
  return h;
}

/** An A or AAAA record for the question's name (a pointer to offset 12). */
function resourceRecord(type: number, ttl: number, ip: string): Buffer {
  const data = type === TYPE_CODES.A ? ipv4Bytes(ip) : ipv6Bytes(ip);
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(1, 4); // class IN
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(data.length, 10);
  return Buffer.concat([rr, data]);
}

function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split(".").map(Number));
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const groups = (s: string | undefined) => (s ? s.split(":") : []);
  const left = groups(head);
  const right = groups(tail);
  const middle = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  const out = Buffer.alloc(16);
  for (const [i, g] of [...left, ...middle, ...right].entries()) {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  }
  return out;
}
