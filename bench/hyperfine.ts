/**
 * Optional cross-check (`--hyperfine`): the start-up rows timed again by hyperfine, which runs
 * each command's runs back to back (not interleaved) and measures wall time only. Agreement
 * with the bench's own medians says the timing harness adds nothing of note.
 */
import { trial } from "./proc.ts";
import type { Tool } from "./tools.ts";

/** hyperfine's result for one row. */
export interface HyperfineRow {
  id: string;
  label: string;
  medianMs: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}

/** Quotes one word for hyperfine's shell-words splitting (-N). */
function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'"'"'`)}'`;
}

/** Runs hyperfine over the tools; returns its medians (empty when hyperfine failed). */
export async function hyperfine(
  tools: Tool[],
  opts: { warmup: number; runs: number; dir: string; log: (line: string) => void },
): Promise<HyperfineRow[]> {
  const json = `${opts.dir}/hyperfine.json`;
  const env: Record<string, string> = { ...Deno.env.toObject() };
  for (const t of tools) Object.assign(env, t.env);
  const log = `${opts.dir}/logs/hyperfine.log`;
  const result = await trial(
    [
      "hyperfine",
      "-N",
      "--style",
      "none",
      "--warmup",
      String(opts.warmup),
      "--runs",
      String(opts.runs),
      "--export-json",
      json,
      ...tools.map((t) => t.argv(0).map(quote).join(" ")),
    ],
    { env, log, timeoutMs: 30 * 60_000 },
  );
  if (result.code !== 0) {
    opts.log(`hyperfine failed (exit status ${result.code}): see ${log}`);
    return [];
  }
  const data = JSON.parse(Deno.readTextFileSync(json)) as {
    results: { median: number; mean: number; min: number; max: number }[];
  };
  return tools.map((t, i) => {
    const r = data.results[i]!;
    return {
      id: t.id,
      label: t.label,
      medianMs: r.median * 1000,
      meanMs: r.mean * 1000,
      minMs: r.min * 1000,
      maxMs: r.max * 1000,
    };
  });
}
