// The `/$/` namers every router has: inet and rinet (host and port), fail and nil,
// and Linkerd's rewriting namers by their class names. Anything else under `/$/` is an
// unknown namer (a failure naming it); paths outside `/$/` are neg here.

import {
  type Activity,
  constant,
  constantOk,
  Empty,
  Fail,
  failed,
  leaf,
  type Name,
  type Namer,
  type NameTree,
  Neg,
  type Path,
  pathName,
} from "../naming/index.js";
import type { HostResolver } from "./dns.js";
import { InetBinder, lookupInet, lookupRinet } from "./inet.js";
import { REWRITING_NAMERS } from "./rewriting.js";

const NEG = constantOk<NameTree<Name>>(Neg);
const FAIL = constantOk<NameTree<Name>>(Fail);
const EMPTY = constantOk<NameTree<Name>>(Empty);

export const GLOBAL_NAMER_NAMES = [
  "inet",
  "io.buoyant.rinet",
  "fail",
  "nil",
  ...Object.keys(REWRITING_NAMERS),
];

export function createGlobalNamer(resolver: HostResolver): Namer {
  const inet = new InetBinder(resolver);
  return {
    lookup(path: Path): Activity<NameTree<Name>> {
      const [root, name] = path.segments;
      if (root !== "$" || name === undefined) return NEG;
      const rest = path.drop(2);
      switch (name) {
        case "inet":
          return lookupInet(inet, rest);
        case "io.buoyant.rinet":
          return lookupRinet(inet, rest);
        case "fail":
          return FAIL;
        case "nil":
          return EMPTY;
      }
      const rewrite = REWRITING_NAMERS[name];
      if (rewrite) {
        const to = rewrite(rest);
        return to === undefined ? NEG : constantOk(leaf<Name>(pathName(to)));
      }
      return constant(
        failed(
          `unknown namer /$/${name} (in ${path.show}); known: ${GLOBAL_NAMER_NAMES.join(", ")}`,
        ),
      );
    },
  };
}
