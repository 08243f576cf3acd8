/**
 * Section 2, scale: N containers running `sleep 2`, started at once. "All running" is when the
 * N-th payload was first seen in /proc (exec'd inside its PID namespace; an early one that
 * already ended still counts), "all gone" when the last launcher exited (its cleanup done),
 * CPU is user + system of every process involved. Rounds alternate the tools.
 */
import { finish, launch, waitRunning } from "./fleet.ts";
import { killGroup } from "./proc.ts";
import { summarize, type Summary } from "./stats.ts";
import type { Launchers } from "./tools.ts";
import type { Workspace } from "./workspace.ts";

const PAYLOAD = ["/bin/sleep", "2"];

/** One tool's scale results. */
export interface ScaleRow {
  id: string;
  label: string;
  allRunningMs: Summary;
  firstRunningMs: Summary;
  allGoneMs: Summary;
  cpuMs: Summary;
  maxConcurrent: number;
  /** Rounds whose all-running time is missing, and why. */
  note?: string;
  failure?: string;
}

/** Runs the scale section. */
export async function scale(
  ws: Workspace,
  L: Launchers,
  opts: { count: number; rounds: number; log: (line: string) => void },
): Promise<ScaleRow[]> {
  const tools: {
    id: string;
    label: string;
    argvs: () => Promise<string[][]>;
    env: Record<string, string>;
  }[] = [
    {
      id: "mini-docker",
      label: "mini-docker run",
      argvs: () => Promise.resolve(Array.from({ length: opts.count }, () => L.miniDocker(PAYLOAD))),
      env: ws.mdEnv,
    },
    {
      id: "runc",
      label: "runc run",
      argvs: () => bundles(ws, "sr", opts.count, (id, b) => L.runc(id, b)),
      env: {},
    },
    {
      id: "crun",
      label: "crun run",
      argvs: () => bundles(ws, "sc", opts.count, (id, b) => L.crun(id, b)),
      env: {},
    },
  ];
  const samples = new Map(tools.map((t) => [t.id, {
    running: [] as number[],
    first: [] as number[],
    gone: [] as number[],
    cpu: [] as number[],
    max: 0,
    missed: [] as string[],
    failure: undefined as string | undefined,
  }]));
  for (let round = 0; round < opts.rounds; round++) {
    for (let i = 0; i < tools.length; i++) {
      const tool = tools[(i + round) % tools.length]!;
      const s = samples.get(tool.id)!;
      if (s.failure !== undefined) continue;
      const argvs = await tool.argvs();
      const fleet = launch(argvs, tool.env, `${ws.dir}/logs`);
      try {
        const running = await waitRunning(fleet, PAYLOAD, opts.count, { timeoutMs: 120_000 });
        const end = await finish(fleet, { timeoutMs: 120_000 });
        if (end.failures.length > 0) {
          s.failure = `${end.failures.length} of ${opts.count} failed: ${end.failures[0]}`;
        } else {
          // A payload that ran unseen (polls starved of CPU) leaves this round without an
          // all-running time; the rest of the round stands.
          if (running.missed === 0) s.running.push(running.allMs);
          else {s.missed.push(
              `${running.missed} (looks up to ${running.maxGapMs.toFixed(0)} ms apart)`,
            );}
          s.first.push(running.firstMs);
          s.gone.push(end.allGoneMs);
          s.cpu.push(end.cpuMs);
          s.max = Math.max(s.max, running.maxConcurrent);
        }
      } catch (err) {
        s.failure = (err as Error).message;
        fleet.pids.forEach(killGroup);
        await finish(fleet, { timeoutMs: 30_000 }).catch(() => {});
      }
      opts.log(
        `scale: ${tool.label} x${opts.count}, round ${round + 1}/${opts.rounds}${
          s.failure !== undefined
            ? `: FAILED: ${s.failure}`
            : s.missed.length > 0 && s.running.length < round + 1
            ? `: ${s.missed.at(-1)} payload(s) ran unseen`
            : `: all running after ${(s.running.at(-1)! / 1000).toFixed(2)} s`
        }`,
      );
    }
  }
  return tools.map((t) => {
    const s = samples.get(t.id)!;
    return {
      id: t.id,
      label: t.label,
      allRunningMs: summarize(s.running),
      firstRunningMs: summarize(s.first),
      allGoneMs: summarize(s.gone),
      cpuMs: summarize(s.cpu),
      maxConcurrent: s.max,
      note: s.missed.length > 0
        ? `all running: ${s.running.length} round(s); in ${s.missed.length} other(s) payloads ran and ended unseen: ${
          s.missed.join(", ")
        }`
        : undefined,
      failure: s.failure,
    };
  });
}

/** N bundles running PAYLOAD (each its own cgroup), and the command line of each. */
async function bundles(
  ws: Workspace,
  prefix: string,
  count: number,
  argv: (id: string, bundle: string) => string[],
): Promise<string[][]> {
  const out: string[][] = [];
  const stamp = Date.now().toString(36);
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${stamp}-${i}`;
    out.push(argv(id, await ws.bundle(id, { args: PAYLOAD })));
  }
  return out;
}
