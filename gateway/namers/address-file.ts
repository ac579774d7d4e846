// The io.l5d.fs address file format: one endpoint per line, `host port` or
// `host port * weight`; `#` starts a comment. Bad lines are reported with their line
// number and skipped, so one typo does not take a service's other endpoints away.

import { type Address, address } from "../naming/index.js";
import { parsePort } from "./inet.js";

export interface AddressFileProblem {
  readonly line: number;
  readonly message: string;
}

export interface ParsedAddressFile {
  readonly addresses: Address[];
  readonly problems: AddressFileProblem[];
}

const HOST = /^[A-Za-z0-9.:%_-]+$/;

export function parseAddressFile(text: string): ParsedAddressFile {
  const addresses: Address[] = [];
  const problems: AddressFileProblem[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const hash = raw.indexOf("#");
    const line = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (line === "") continue;
    const fail = (message: string) => {
      problems.push({ line: i + 1, message: `${message}: "${line}"` });
    };
    const parts = line.split(/\s+/);
    if (parts.length !== 2 && parts.length !== 4) {
      fail("expected `host port` or `host port * weight`");
      continue;
    }
    const [host, portText, star, weightText] = parts as [string, string, string?, string?];
    if (!HOST.test(host)) {
      fail("not a host name or IP address");
      continue;
    }
    const port = parsePort(portText);
    if (port === undefined || port === 0) {
      fail("not a port number (1-65535)");
      continue;
    }
    let weight = 1;
    if (parts.length === 4) {
      const w = Number(weightText);
      if (
        star !== "*" ||
        weightText === undefined ||
        !/^\d*\.?\d+$/.test(weightText) ||
        !Number.isFinite(w)
      ) {
        fail("expected `* weight` with a non-negative number after the port");
        continue;
      }
      weight = w;
    }
    addresses.push(address(host, port, weight));
  }
  return { addresses, problems };
}
