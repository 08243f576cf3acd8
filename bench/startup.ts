/**
 * Section 1, start-up: every tool runs its payload `warmup + runs` times, round-robin (the
 * order rotates each round) so that machine noise hits every tool alike. Wall time is from
 * spawn to exit of the tool; CPU time is user + system of the whole process tree (wait4
 * rusage, daemonized descendants included). Peak RSS comes from a separate pass under GNU time,
 * because the rusage of a process spawned by the bench counts the bench's own memory (vfork:
 * the child's first exec records the parent's peak).
 */
import { interrupted, trial, type TrialResult } from "./proc.ts";
import { summarize, type Summary } from "./stats.ts";
import type { Tool } from "./tools.ts";

/** One row of the start-up table. */
export interface StartupRow {
  id: string;
  label: string;
  family: string;
  note: string;
  wallMs: Summary;
  cpuMs: Summary;
  userMs: Summary;
  sysMs: Summary;
  /** Peak RSS of the largest single process of the tree, KiB (median of the RSS pass). */
  peakRssKiB: number;
  /** Every measured wall time, in run order. */
  samplesMs: number[];
  /** Set when the tool failed to run its payload. */
  failure?: string;
}

/** How many runs. */
export interface StartupOptions {
  warmup: number;
  runs: number;
  /** Runs of the peak-RSS pass. */
  rssRuns: number;
  logDir: string;
  log: (line: string) => void;
}

/** Runs the start-up section. */
export async function startup(tools: Tool[], opts: StartupOptions): Promise<StartupRow[]> {
  const results = new Map<string, TrialResult[]>(tools.map((t) => [t.id, []]));
  const failures = new Map<string, string>();
  const baseEnv = Deno.env.toObject();
  const once = async (tool: Tool, n: number, wrap: string[] = []) => {
    const log = `${opts.logDir}/${tool.id}.log`;
    Deno.writeFileSync(log, new Uint8Array());
    const result = await trial([...wrap, ...tool.argv(n)], {
      env: { ...baseEnv, ...tool.env },
      log,
      timeoutMs: 60_000,
    });
    if (result.code !== 0 && !interrupted()) {
      const output = Deno.readTextFileSync(log).trim().split("\n").slice(-3).join(" | ");
      failures.set(tool.id, `exit status ${result.code}: ${output || "no output"}`);
      opts.log(`${tool.label} FAILED (exit status ${result.code}): ${output}`);
    }
    return result;
  };

  const total = opts.warmup + opts.runs;
  let n = 0;
  for (let round = 0; round < total; round++) {
    const live = tools.filter((t) => !failures.has(t.id));
    for (let i = 0; i < live.length; i++) {
      const tool = live[(i + round) % live.length]!;
      const result = await once(tool, n++);
      if (round >= opts.warmup && result.code === 0) results.get(tool.id)!.push(result);
    }
    if ((round + 1) % 5 === 0 || round + 1 === total) {
      opts.log(`start-up: round ${round + 1}/${total}`);
    }
  }

  // Peak RSS: GNU time forks (not vforks) the tool, so its %M is the tool's own.
  const rss = new Map<string, number[]>(tools.map((t) => [t.id, []]));
  for (let round = 0; round < opts.rssRuns; round++) {
    for (const tool of tools.filter((t) => !failures.has(t.id))) {
      const file = `${opts.logDir}/${tool.id}.rss`;
      const result = await once(tool, n++, ["/usr/bin/time", "-f", "%M", "-o", file]);
      if (result.code !== 0) continue;
      const own = Number(Deno.readTextFileSync(file).trim().split("\n").pop());
      rss.get(tool.id)!.push(Math.max(own, result.orphanMaxRssKiB));
    }
  }

  return tools.map((tool) => {
    const rs = results.get(tool.id)!;
    return {
      id: tool.id,
      label: tool.label,
      family: tool.family,
      note: tool.note,
      wallMs: summarize(rs.map((r) => r.wallMs)),
      cpuMs: summarize(rs.map((r) => r.userMs + r.sysMs)),
      userMs: summarize(rs.map((r) => r.userMs)),
      sysMs: summarize(rs.map((r) => r.sysMs)),
      peakRssKiB: summarize(rss.get(tool.id)!).median,
      samplesMs: rs.map((r) => r.wallMs),
      failure: failures.get(tool.id),
    };
  });
}
