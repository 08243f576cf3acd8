/**
 * Many containers at once: N launcher processes spawned back to back, their payloads watched
 * in /proc, and the whole tree reaped with its CPU time. Used by the scale, memory and limit
 * sections.
 */
import { add, killGroup, reapOrphans, spawn, type Usage, wait } from "./proc.ts";
import { PayloadWatcher } from "./procfs.ts";

/** Launchers started together. */
export interface Fleet {
  /** performance.now() when the first launcher was spawned. */
  start: number;
  pids: number[];
  /** Each launcher's exit code, usage and exit time (ms after start). */
  exits: Promise<{ code: number; usage: Usage; atMs: number }[]>;
  logs: string[];
}

/** Spawns one launcher per command line; stdout and stderr go to one log file per launcher. */
export function launch(argvs: string[][], env: Record<string, string>, logDir: string): Fleet {
  const full = { ...Deno.env.toObject(), ...env };
  const start = performance.now();
  const logs = argvs.map((_, i) => `${logDir}/fleet-${i}.log`);
  for (const log of logs) Deno.writeFileSync(log, new Uint8Array());
  const pids = argvs.map((argv, i) => spawn(argv, { env: full, log: logs[i] }));
  const exits = Promise.all(
    pids.map(async (pid) => ({ ...await wait(pid), atMs: performance.now() - start })),
  );
  return { start, pids, exits, logs };
}

/** When the payloads were first seen running. */
export interface Running {
  /** ms after start when the first and the last (count-th) payload was first seen. */
  firstMs: number;
  /** NaN when some payload was never seen (see `missed`). */
  allMs: number;
  /** The most payloads seen alive at once. */
  maxConcurrent: number;
  /** Host PIDs of the payloads seen. */
  pids: number[];
  /** Payloads that ran and ended between two looks (every launcher had exited by then). */
  missed: number;
  /** The longest time between two looks at /proc (a payload shorter than that may be missed). */
  maxGapMs: number;
}

/**
 * Polls /proc until `count` distinct payload processes have been seen (a payload that already
 * exited still counts). When every launcher has exited first, the payloads not seen were too
 * short-lived for the polling (`missed`); after `timeoutMs` it throws. The pause between looks
 * is at least twice the last look's duration, so that the watcher never takes more than a
 * third of a CPU from the tools it watches.
 */
export async function waitRunning(
  fleet: Fleet,
  payload: readonly string[],
  count: number,
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<Running> {
  const watcher = new PayloadWatcher(payload);
  const seen = new Set<number>();
  let firstMs = NaN;
  let maxConcurrent = 0;
  let exited = false;
  fleet.exits.then(() => exited = true, () => exited = true);
  let last = 0;
  let maxGapMs = 0;
  for (;;) {
    const before = performance.now();
    const now = watcher.look();
    const t = performance.now() - fleet.start;
    maxGapMs = Math.max(maxGapMs, t - last);
    last = t;
    for (const pid of now) seen.add(pid);
    maxConcurrent = Math.max(maxConcurrent, now.length);
    if (seen.size > 0 && Number.isNaN(firstMs)) firstMs = t;
    const result = { firstMs, maxConcurrent, pids: [...seen], maxGapMs };
    if (seen.size >= count) return { ...result, allMs: t, missed: 0 };
    if (exited) return { ...result, allMs: NaN, missed: count - seen.size };
    if (t > opts.timeoutMs) {
      const tails = fleet.logs.map((l) => Deno.readTextFileSync(l).trim()).filter((t) => t !== "");
      throw new Error(
        `only ${seen.size} of ${count} payloads ran within ${opts.timeoutMs} ms${
          tails.length > 0 ? `: ${tails[0]!.split("\n").slice(0, 6).join(" | ")}` : ""
        }`,
      );
    }
    const spent = performance.now() - before;
    await new Promise((r) => setTimeout(r, Math.max(opts.intervalMs ?? 5, 2 * spent)));
  }
}

/** How a fleet ended. */
export interface FleetEnd {
  /** ms after start when the last launcher exited. */
  allGoneMs: number;
  /** CPU (user + system) of every launcher's tree and the orphans, ms. */
  cpuMs: number;
  /** Launchers that exited non-zero, with their first log line. */
  failures: string[];
}

/**
 * Waits for every launcher (killing their process groups after `timeoutMs`), then reaps the
 * orphans, and sums the CPU time.
 */
export async function finish(
  fleet: Fleet,
  opts: { timeoutMs: number; okCodes?: number[] },
): Promise<FleetEnd> {
  const timer = setTimeout(() => fleet.pids.forEach(killGroup), opts.timeoutMs);
  let exits: Awaited<Fleet["exits"]>;
  try {
    exits = await fleet.exits;
  } finally {
    clearTimeout(timer);
  }
  const usage: Usage = { userMs: 0, sysMs: 0, maxRssKiB: 0 };
  for (const e of exits) add(usage, e.usage);
  const deadline = performance.now() + 10_000;
  for (;;) {
    const r = reapOrphans();
    add(usage, r.usage);
    if (!r.alive || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const ok = opts.okCodes ?? [0];
  const failures = exits.flatMap((e, i) =>
    ok.includes(e.code) ? [] : [
      `exit status ${e.code}: ${
        Deno.readTextFileSync(fleet.logs[i]!).trim().split("\n").slice(-2).join(" | ") ||
        "no output"
      }`,
    ]
  );
  return {
    allGoneMs: Math.max(...exits.map((e) => e.atMs)),
    cpuMs: usage.userMs + usage.sysMs,
    failures,
  };
}
