// /$/inet/<host>/<port> and /$/io.buoyant.rinet/<port>/<host>: bind a host and port,
// resolving host names through the HostResolver. The bound name stays the same object
// while the name exists; its addresses change with DNS. A name that does not exist
// (NXDOMAIN) is neg, so a dtab alternate can take over.

import {
  type Activity,
  type Addr,
  AddrNeg,
  AddrPending,
  addrBound,
  address,
  addrFailed,
  boundName,
  constant,
  failed,
  leaf,
  mapVar,
  type Name,
  type NameTree,
  Neg,
  ok,
  Path,
  PENDING,
  type State,
  type Var,
  VarCache,
} from "../naming/index.js";
import type { HostResolver, HostState } from "./dns.js";

export class InetBinder {
  private readonly addrs = new VarCache<string, Addr>();
  private readonly trees = new VarCache<string, State<NameTree<Name>>>();

  constructor(private readonly resolver: HostResolver) {}

  /** The live addresses of host:port. */
  addr(host: string, port: number): Var<Addr> {
    return this.addrs.get(`${host}:${port}`, () =>
      mapVar(this.resolver.watch(host), (s) => toAddr(s, host, port)),
    );
  }

  /** A name tree for `id` (the bound id) with `residual`, bound to host:port. */
  bind(id: Path, residual: Path, host: string, port: number): Activity<NameTree<Name>> {
    const key = `${id.show} ${residual.show}`;
    return this.trees.get(key, () => {
      const addr = this.addr(host, port);
      const bound = ok(leaf<Name>(boundName(id, addr, residual)));
      // Same State object while the name exists, so bindings do not see a change.
      return mapVar(addr, (a): State<NameTree<Name>> => {
        switch (a.kind) {
          case "pending":
            return PENDING;
          case "neg":
            return ok(Neg);
          case "failed":
            return failed(a.error);
          default:
            return bound;
        }
      });
    });
  }
}

function toAddr(s: HostState, host: string, port: number): Addr {
  switch (s.kind) {
    case "pending":
      return AddrPending;
    case "neg":
      return AddrNeg;
    case "failed":
      return addrFailed(s.error);
    case "ok":
      return addrBound(
        s.ips.map((ip) => address(ip, port, 1, ip === host ? {} : { hostname: host })),
      );
  }
}

export function parsePort(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** /$/inet/<host>/<port>/rest or /$/inet/<port>/rest (localhost). `rest` is after `/$/inet`. */
export function lookupInet(binder: InetBinder, rest: Path): Activity<NameTree<Name>> {
  const [a, b] = rest.segments;
  const idBase = ["$", "inet"];
  const port2 = parsePort(b);
  if (a !== undefined && port2 !== undefined) {
    return binder.bind(Path.fromTrusted([...idBase, a, b!]), rest.drop(2), a, port2);
  }
  const port1 = parsePort(a);
  if (port1 !== undefined) {
    return binder.bind(Path.fromTrusted([...idBase, a!]), rest.drop(1), "localhost", port1);
  }
  return badPath(`/$/inet${rest.show}`, "expected /$/inet/<host>/<port>");
}

/** /$/io.buoyant.rinet/<port>/<host>/rest. `rest` is after the namer name. */
export function lookupRinet(binder: InetBinder, rest: Path): Activity<NameTree<Name>> {
  const [portText, host] = rest.segments;
  const port = parsePort(portText);
  if (host === undefined || port === undefined) {
    return badPath(`/$/io.buoyant.rinet${rest.show}`, "expected /$/io.buoyant.rinet/<port>/<host>");
  }
  return binder.bind(
    Path.fromTrusted(["$", "io.buoyant.rinet", portText!, host]),
    rest.drop(2),
    host,
    port,
  );
}

function badPath(path: string, expected: string): Activity<NameTree<Name>> {
  return constant(failed(`${path}: ${expected}`));
}
