// How the UI writes numbers and times: short, and "–" where there is nothing to show.

export const NONE = "–";

export function count(n: number | undefined): string {
  return n === undefined ? NONE : Math.round(n).toLocaleString("en-US");
}

export function rate(n: number | undefined): string {
  return n === undefined ? NONE : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
}

export function percent(fraction: number | undefined): string {
  return fraction === undefined ? NONE : `${(fraction * 100).toFixed(fraction === 1 ? 0 : 2)}%`;
}

export function ms(n: number | undefined): string {
  return n === undefined ? NONE : n < 10 ? n.toFixed(2) : n.toFixed(0);
}

export function bytes(n: number | undefined): string {
  return n === undefined ? NONE : `${(n / 1024 / 1024).toFixed(0)} MiB`;
}

/** A span of seconds as the largest units: "3d 4h", "5m 2s". */
export function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return NONE;
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(Math.round(seconds));
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  const parts: string[] = [];
  for (const [name, size] of units) {
    if (s >= size || (parts.length === 0 && size === 1)) {
      parts.push(`${Math.floor(s / size)}${name}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return sign + parts.join(" ");
}
