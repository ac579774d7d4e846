// CPU profiles of lintel during one row (see profile-hook.ts for how they are taken), and
// a reading of each: where the time went by self time (the function that was running
// when a sample was taken), so a reader sees the hot spots without a viewer. Positions in
// lintel's compiled files are mapped back to the TypeScript through the build's source
// maps.

import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { SourceMap } from "node:module";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Proc } from "./processes.js";

export interface ThreadProfile {
  /** "main" (the control thread, which also serves the node engine) or "worker N". */
  readonly thread: string;
  readonly path: string;
  readonly summary?: ProfileSummary;
  readonly error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Profiles every thread of `lintel` (started with the hook preloaded) while `drive` runs,
 * and leaves one `<label>-<thread>.cpuprofile` per thread in `dir`. `seq` counts the
 * profiles taken from this lintel process, from 1.
 */
export async function profileWhile(
  lintel: Proc,
  dir: string,
  seq: number,
  label: string,
  root: string,
  drive: () => Promise<unknown>,
): Promise<ThreadProfile[]> {
  const pid = lintel.child.pid!;
  process.kill(pid, "SIGUSR2");
  await sleep(500); // the profilers start on lintel's next turns of its event loops
  await drive();
  process.kill(pid, "SIGUSR2");
  const manifest = join(dir, `lintel-${pid}-${seq}.json`);
  for (const end = Date.now() + 60_000; !existsSync(manifest); await sleep(100)) {
    if (lintel.child.exitCode !== null)
      throw new Error(`lintel died while profiling:\n${lintel.output()}`);
    if (Date.now() > end) throw new Error(`lintel wrote no profile (${manifest})`);
  }
  const { files } = JSON.parse(readFileSync(manifest, "utf8")) as {
    files: { thread: string; path: string; error?: string }[];
  };
  rmSync(manifest);
  return files.map((f) => {
    if (f.error) return { thread: f.thread, path: "", error: f.error };
    const path = join(dir, `${label}-${f.thread.replace(" ", "")}.cpuprofile`);
    renameSync(f.path, path);
    return { thread: f.thread, path, summary: summarizeProfile(path, root) };
  });
}

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface CpuProfile {
  readonly nodes: readonly { id: number; callFrame: CallFrame }[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface HotSpot {
  readonly fn: string;
  /**
   * file:line, in the TypeScript source where a source map says so; "(native)" for C++
   * functions, empty for V8 states such as (program) or (garbage collector).
   */
  readonly where: string;
  /** Share of the busy (non-idle) samples, in percent. */
  readonly pct: number;
}

export interface ProfileSummary {
  readonly durationMs: number;
  readonly samples: number;
  /** Share of all samples in which the thread was idle (waiting for I/O), in percent. */
  readonly idlePct: number;
  readonly top: readonly HotSpot[];
}

export function summarizeProfile(path: string, root: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  // Self time: the time until the next sample goes to the node this sample stopped in.
  const deltas = profile.timeDeltas ?? [];
  const samples = profile.samples ?? [];
  const byNode = new Map<number, number>();
  for (let i = 0; i < samples.length; i++) {
    const t = deltas[i + 1] ?? 0;
    byNode.set(samples[i]!, (byNode.get(samples[i]!) ?? 0) + t);
  }
  const maps = new Map<string, SourceMap | null>();
  const where = (f: CallFrame): string => {
    if (!f.url) return "";
    if (!f.url.startsWith("file:")) return `${f.url}:${f.lineNumber + 1}`;
    const file = fileURLToPath(f.url);
    let map = maps.get(file);
    if (map === undefined) {
      map = null;
      try {
        if (existsSync(`${file}.map`))
          map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, "utf8")));
      } catch {
        map = null;
      }
      maps.set(file, map);
    }
    const entry = map?.findEntry(f.lineNumber, f.columnNumber);
    if (entry && "originalSource" in entry) {
      const src = entry.originalSource.startsWith("file:")
        ? fileURLToPath(entry.originalSource)
        : isAbsolute(entry.originalSource)
          ? entry.originalSource
          : resolve(dirname(file), entry.originalSource);
      return `${relative(root, src)}:${entry.originalLine + 1}`;
    }
    const shown = file.startsWith(root) ? relative(root, file) : file;
    return `${shown}:${f.lineNumber + 1}`;
  };
  let idle = 0;
  let total = 0;
  const agg = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of byNode) {
    const f = frames.get(id)!;
    total += us;
    if (f.functionName === "(idle)") {
      idle += us;
      continue;
    }
    const fn = f.functionName || "(anonymous)";
    // No script: a V8 state like (program) or (garbage collector), or a native function.
    const w = f.url ? where(f) : fn.startsWith("(") ? "" : "(native)";
    const key = `${fn}\u0000${w}`;
    const a = agg.get(key) ?? { fn, where: w, us: 0 };
    a.us += us;
    agg.set(key, a);
  }
  const busy = Math.max(1, total - idle);
  return {
    durationMs: (profile.endTime - profile.startTime) / 1000,
    samples: samples.length,
    idlePct: total > 0 ? (100 * idle) / total : 0,
    top: [...agg.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((a) => ({ fn: a.fn, where: a.where, pct: (100 * a.us) / busy })),
  };
}

export function formatSummary(s: ProfileSummary, indent = ""): string {
  const lines = [
    `${indent}${s.samples} samples over ${(s.durationMs / 1000).toFixed(1)} s, idle ${s.idlePct.toFixed(1)}%; self time as a share of the busy time:`,
  ];
  for (const h of s.top)
    lines.push(
      `${indent}  ${h.pct.toFixed(1).padStart(5)}%  ${h.fn.slice(0, 40).padEnd(40)}  ${h.where}`,
    );
  return lines.join("\n");
}
