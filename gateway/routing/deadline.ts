// Request deadlines across proxies (Linkerd's l5d-ctx-deadline): `<timestamp> <deadline>`,
// both in nanoseconds since the epoch, the time the deadline was set and the time by
// which the request must be answered. A peer's deadline is read only where l5d-* headers
// are trusted (not on clearContext servers); lintel passes the earliest deadline on, so a
// node proxy behind the edge gives up when the edge has.

export const DEADLINE_HEADER = "l5d-ctx-deadline";

const NS_PER_MS = 1_000_000n;

/** The earliest deadline in the request's l5d-ctx-deadline headers (ms since the epoch). */
export function peerDeadline(headers: readonly string[]): number | undefined {
  let earliest: number | undefined;
  // On the path of every request: no allocation unless the header is there.
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== DEADLINE_HEADER) continue;
    // Several deadlines may arrive as one comma-separated header.
    for (const item of headers[i + 1]!.split(",")) {
      const ms = parseDeadline(item);
      if (ms !== undefined && (earliest === undefined || ms < earliest)) earliest = ms;
    }
  }
  return earliest;
}

/** One `<timestamp> <deadline>` value; malformed ones are ignored, as Linkerd does. */
function parseDeadline(item: string): number | undefined {
  const parts = item.trim().split(/\s+/);
  if (parts.length !== 2 || !/^\d{1,20}$/.test(parts[0]!) || !/^\d{1,20}$/.test(parts[1]!)) {
    return undefined;
  }
  return Number(BigInt(parts[1]!) / NS_PER_MS);
}

/**
 * The header value for a deadline set at `now`, both in ms since the epoch. Whole
 * milliseconds in nanoseconds are the digits and six zeros (no BigInt on every request).
 */
export function formatDeadline(now: number, deadline: number): string {
  return `${Math.floor(now)}000000 ${Math.floor(deadline)}000000`;
}
