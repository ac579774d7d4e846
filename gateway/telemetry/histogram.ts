// A latency histogram with fixed log-scale buckets: recording is a few integer operations,
// two histograms (of two threads, say) merge by adding their buckets, and percentiles are
// read from the buckets. Values are milliseconds, bucketed by whole microseconds.

/**
 * Below 2^SUB_BITS µs every microsecond has its own bucket; above, each power of two is
 * split into 2^SUB_BITS buckets, so a reported percentile is within 1/2^(SUB_BITS+1)
 * (about 1.6 %) of a recorded value.
 */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
/** The largest value bucketed, in µs (about 35 minutes); anything longer lands in the last bucket. */
const MAX_US = 0x7fffffff;
/** Octaves 2^SUB_BITS .. 2^30 µs, SUB buckets each, after the SUB exact ones. */
export const BUCKETS = SUB + (31 - SUB_BITS) * SUB;

/** The bucket of a value in whole microseconds (0 ≤ us ≤ MAX_US). */
export function bucketOf(us: number): number {
  if (us < SUB) return us;
  const e = 31 - Math.clz32(us);
  return SUB + (e - SUB_BITS) * SUB + ((us >>> (e - SUB_BITS)) & (SUB - 1));
}

/** The value (ms) a bucket stands for: its microsecond, or the middle of its range. */
export function bucketValue(index: number): number {
  if (index < SUB) return index / 1000;
  // The bucket holds the whole microseconds lower .. lower + width - 1.
  const width = 2 ** ((index - SUB) >> SUB_BITS);
  const lower = (SUB + ((index - SUB) & (SUB - 1))) * width;
  return (lower + (width - 1) / 2) / 1000;
}

/** What a histogram holds, as a thread sends it: counts of the non-empty buckets only. */
export interface HistogramSnapshot {
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  /** Non-empty buckets: index, count, index, count, … */
  readonly buckets: readonly number[];
}

/** A histogram's summary, in the fields Linkerd's metrics.json gives. */
export interface HistogramSummary {
  readonly count: number;
  readonly sum: number;
  readonly avg: number;
  readonly min: number;
  readonly max: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly p9990: number;
  readonly p9999: number;
}

export class Histogram {
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;
  private readonly counts = new Float64Array(BUCKETS);

  /** Records one value in milliseconds. */
  record(ms: number): void {
    this.count++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    const us = ms * 1000;
    // `us > 0` is false for NaN and negatives: they count as 0.
    this.counts[bucketOf(us >= MAX_US ? MAX_US : us > 0 ? us | 0 : 0)]!++;
  }

  snapshot(): HistogramSnapshot {
    const buckets: number[] = [];
    const c = this.counts;
    for (let i = 0; i < c.length; i++) if (c[i] !== 0) buckets.push(i, c[i]!);
    return {
      count: this.count,
      sum: this.sum,
      min: this.count === 0 ? 0 : this.min,
      max: this.max,
      buckets,
    };
  }
}

/** Adds histogram snapshots: buckets, counts and sums added, the extremes kept. */
export function mergeHistograms(parts: readonly HistogramSnapshot[]): HistogramSnapshot {
  const counts = new Map<number, number>();
  let count = 0;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  for (const p of parts) {
    if (p.count === 0) continue;
    count += p.count;
    sum += p.sum;
    if (p.min < min) min = p.min;
    if (p.max > max) max = p.max;
    for (let i = 0; i < p.buckets.length; i += 2) {
      const b = p.buckets[i]!;
      counts.set(b, (counts.get(b) ?? 0) + p.buckets[i + 1]!);
    }
  }
  const buckets: number[] = [];
  for (const b of [...counts.keys()].sort((x, y) => x - y)) buckets.push(b, counts.get(b)!);
  return { count, sum, min: count === 0 ? 0 : min, max, buckets };
}

/**
 * The value below which a fraction `q` of the recorded values lie (nearest rank), as the
 * value its bucket stands for, kept within the recorded minimum and maximum.
 */
export function percentile(h: HistogramSnapshot, q: number): number {
  if (h.count === 0) return 0;
  if (q <= 0) return h.min;
  if (q >= 1) return h.max;
  const rank = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (let i = 0; i < h.buckets.length; i += 2) {
    seen += h.buckets[i + 1]!;
    if (seen >= rank) return Math.min(h.max, Math.max(h.min, bucketValue(h.buckets[i]!)));
  }
  return h.max;
}

/**
 * Upper bounds (seconds) of the Prometheus histogram buckets every latency histogram is
 * exposed with: 1 ms to 60 s, roughly 1-2.5-5 per decade, so replicas and threads that
 * share them can be added up by `le` (`histogram_quantile` over `sum by (le)`).
 */
export const PROMETHEUS_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/**
 * How many recorded values fall at or below each bound (in ms, ascending): cumulative
 * counts read from the log-scale buckets. A bucket counts below a bound when its first
 * microsecond does, so a count may include values up to one bucket width (under 1.6 %)
 * above the bound. Nothing is added to recording: the buckets are already there.
 */
export function cumulativeCounts(h: HistogramSnapshot, boundsMs: readonly number[]): number[] {
  const out = new Array<number>(boundsMs.length).fill(0);
  const limits = boundsMs.map((ms) =>
    bucketOf(Math.min(MAX_US, Math.max(0, Math.floor(ms * 1000)))),
  );
  for (let i = 0; i < h.buckets.length; i += 2) {
    const b = h.buckets[i]!;
    const n = h.buckets[i + 1]!;
    for (let j = 0; j < limits.length; j++) if (b <= limits[j]!) out[j]! += n;
  }
  return out;
}

export function summarize(h: HistogramSnapshot): HistogramSummary {
  return {
    count: h.count,
    sum: h.sum,
    avg: h.count === 0 ? 0 : h.sum / h.count,
    min: h.min,
    max: h.max,
    p50: percentile(h, 0.5),
    p90: percentile(h, 0.9),
    p95: percentile(h, 0.95),
    p99: percentile(h, 0.99),
    p9990: percentile(h, 0.999),
    p9999: percentile(h, 0.9999),
  };
}
