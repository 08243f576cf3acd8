/**
 * Section 5, phases: where `mini-docker run /bin/true` spends its time, and what Docker's
 * confinement (capabilities, seccomp, device rules) adds to it.
 *
 * - The phase table: runs with MINI_DOCKER_TRACE=1 (base/trace.ts), whose two threads print
 *   "+<ms> <phase>" on stderr; each phase's offset from the first line, "main.ts", per run, and
 *   their medians, listed in the order of the medians. The main thread's offsets are exact; the
 *   container's thread estimates the process start on its own (from /proc, 10 ms resolution), so
 *   its offsets carry up to ±10 ms each run, which medians over many runs mostly cancel.
 *   Deno's own boot before main.ts is the start-up table's "deno run (empty program)" (or
 *   measured here when that section does not run).
 * - Component costs, from fresh processes running components.ts (each measures the first call,
 *   as mini-docker pays it, then repeats).
 */
import { trial } from "./proc.ts";
import type { ProbeResult } from "./components.ts";
import { median, summarize, type Summary } from "./stats.ts";
import { denoPath, type Launchers, REPO } from "./tools.ts";
import type { Workspace } from "./workspace.ts";

/** One phase: its offset from "main.ts" over the runs. */
export interface PhaseRow {
  phase: string;
  /** Which thread prints it: mini-docker's main thread, or the container's thread. */
  thread: "main" | "container";
  offsetMs: Summary;
}

/** One measured component. */
export interface ComponentRow {
  id: string;
  label: string;
  /** Where it runs in a start. */
  where: string;
  /** The first call in a fresh process (what a run pays), median over the processes. */
  firstMs?: number;
  /** Repeated calls (fresh Worker each time for the thread's steps), median. */
  repeatMs: number;
  n: number;
}

/** The phases section's results. */
export interface Phases {
  runs: number;
  rows: PhaseRow[];
  /** Wall time of the traced runs, spawn to reap. */
  wallMs: Summary;
  /** Median offset of "main.ts" from the process start (10 ms resolution each run). */
  mainTsMs: number;
  /** Deno's own boot: `deno run` of an empty program, spawn to reap. */
  denoBootMs: Summary;
  /**
   * How long the main thread waited for the container's thread to finish its first phase
   * ("thread prepared" minus "gate, watcher, seccomp", both on the main thread), median: the
   * slack of the main thread's work during that phase.
   */
  joinWaitMs: number;
  components: ComponentRow[];
  /** Instructions of Docker's profile compiled for this machine. */
  seccompInstructions: number;
  cgroupDriver: string;
  /** Probe processes and repeats per process. */
  probes: number;
  repeats: number;
  failure?: string;
}

/** Lines the container's thread prints (thread.ts, recipe.ts); the others are the main thread's. */
const THREAD_PHASE = /^(thread booted|thread configured|recipe: |thread: )/;

/**
 * One traced run: each phase's ms after "main.ts" (the first time it is printed), and "main.ts"
 * itself from the process start.
 */
export function parseTrace(
  text: string,
): { offsets: Map<string, number>; mainTsMs: number } | undefined {
  const lines = [...text.matchAll(/^\+([\d.]+) (.+)$/gm)];
  const main = lines.find((m) => m[2] === "main.ts");
  if (main === undefined) return undefined;
  const offsets = new Map<string, number>();
  for (const m of lines) {
    if (!offsets.has(m[2]!)) offsets.set(m[2]!, Number(m[1]) - Number(main[1]));
  }
  return { offsets, mainTsMs: Number(main[1]) };
}

/** Runs the phases section. */
export async function phases(
  ws: Workspace,
  L: Launchers,
  opts: {
    runs: number;
    probes: number;
    repeats: number;
    /** The start-up table's empty-program row, when it ran. */
    denoBoot?: Summary;
    log: (line: string) => void;
  },
): Promise<Phases> {
  const base = Deno.env.toObject();
  const log = `${ws.dir}/logs/phases.log`;
  const empty = `${ws.dir}/empty.ts`;
  Deno.writeTextFileSync(empty, "");
  const traces: Map<string, number>[] = [];
  const mainTs: number[] = [];
  const wall: number[] = [];
  const boot: number[] = [];
  let failure: string | undefined;
  // Two warm-ups (the seccomp cache is filled by the first run), then the runs; the empty
  // program alternates with them when the start-up section did not measure it.
  for (let i = 0; i < opts.runs + 2 && failure === undefined; i++) {
    Deno.writeFileSync(log, new Uint8Array());
    const r = await trial(L.miniDocker(["/bin/true"]), {
      env: { ...base, ...ws.mdEnv, MINI_DOCKER_TRACE: "1" },
      log,
    });
    const text = Deno.readTextFileSync(log);
    const parsed = parseTrace(text);
    if (r.code !== 0 || parsed === undefined) {
      failure = `traced run: exit status ${r.code}: ${
        text.trim().split("\n").slice(-2).join(" | ")
      }`;
      break;
    }
    if (i >= 2) {
      traces.push(parsed.offsets);
      mainTs.push(parsed.mainTsMs);
      wall.push(r.wallMs);
    }
    if (opts.denoBoot === undefined) {
      const e = await trial([denoPath(), "run", "-A", "--quiet", empty], { env: base });
      if (i >= 2 && e.code === 0) boot.push(e.wallMs);
    }
  }
  if (failure !== undefined) opts.log(`phases: ${failure}`);

  const names = [...new Set(traces.flatMap((t) => [...t.keys()]))];
  const rows: PhaseRow[] = names.map((phase) => ({
    phase,
    thread: THREAD_PHASE.test(phase) ? "container" as const : "main" as const,
    offsetMs: summarize(traces.flatMap((t) => t.get(phase) ?? [])),
  })).sort((a, b) => a.offsetMs.median - b.offsetMs.median);
  const joinWaitMs = median(traces.flatMap((t) => {
    const ready = t.get("gate, watcher, seccomp");
    const prepared = t.get("thread prepared");
    return ready === undefined || prepared === undefined ? [] : [prepared - ready];
  }));

  opts.log(`phases: component probes (${opts.probes} processes, ${opts.repeats} repeats each)`);
  const probes: ProbeResult[] = [];
  const cacheDir = `${ws.dir}/seccomp-cache`;
  // One more probe first, to fill the seccomp cache (mini-docker's runs have filled theirs).
  let probeFailure: string | undefined;
  for (let i = 0; i < opts.probes + 1 && probeFailure === undefined; i++) {
    const out = `${ws.dir}/probe-${i}.json`;
    Deno.writeFileSync(log, new Uint8Array());
    const r = await trial(
      [
        denoPath(),
        "run",
        "-A",
        "--quiet",
        `${REPO}/bench/components.ts`,
        out,
        `${ws.cgroupTag}/components`,
        cacheDir,
        String(opts.repeats),
      ],
      { env: base, log },
    );
    if (r.code !== 0) {
      probeFailure = `component probe: exit status ${r.code}: ${
        Deno.readTextFileSync(log).trim().split("\n").slice(-2).join(" | ")
      }`;
      opts.log(`phases: ${probeFailure}`);
      break;
    }
    if (i > 0) probes.push(JSON.parse(Deno.readTextFileSync(out)));
  }

  return {
    runs: traces.length,
    rows,
    wallMs: summarize(wall),
    mainTsMs: median(mainTs),
    denoBootMs: opts.denoBoot ?? summarize(boot),
    joinWaitMs,
    components: components(probes),
    seccompInstructions: probes[0]?.instructions ?? NaN,
    cgroupDriver: probes[0]?.cgroup.driver ?? "?",
    probes: probes.length,
    repeats: opts.repeats,
    failure: [failure, probeFailure].filter((f) => f !== undefined).join("; ") || undefined,
  };
}

/** The component rows, from the probes. */
function components(probes: ProbeResult[]): ComponentRow[] {
  const all = (f: (p: ProbeResult) => number[]) => probes.flatMap(f);
  const row = (
    id: string,
    label: string,
    where: string,
    repeat: number[],
    first?: number[],
  ): ComponentRow => ({
    id,
    label,
    where,
    firstMs: first === undefined ? undefined : median(first),
    repeatMs: median(repeat),
    n: repeat.length,
  });
  const confine = probes.flatMap((p) => p.confine);
  const cg = (f: (c: ProbeResult["cgroup"]) => number[]) => all((p) => f(p.cgroup));
  const diff = (a: number[], b: number[]) => median(a) - median(b);
  const rows = [
    row(
      "worker-block",
      "new Worker(container/thread.ts): the constructor blocks its caller",
      "main thread, first thing",
      all((p) => p.worker.blockMs),
      probes.map((p) => p.worker.firstBlockMs),
    ),
    row(
      "worker-boot",
      "new Worker: until the thread's first message (booted)",
      "container's thread",
      all((p) => p.worker.bootMs),
      probes.map((p) => p.worker.firstBootMs),
    ),
    row(
      "resolve",
      "Docker's seccomp profile read and resolved for 14 capabilities",
      "container's thread, while it waits for its configuration",
      all((p) => p.resolve.ms),
      probes.map((p) => p.resolve.firstMs),
    ),
    row(
      "compile-cached",
      "seccomp filter compiled, cache hit (first: module import, libseccomp mapped)",
      "container's thread, while it waits for its configuration",
      all((p) => p.compileCached.ms),
      probes.map((p) => p.compileCached.firstMs),
    ),
    row(
      "compile-uncached",
      "seccomp filter compiled by libseccomp, no cache (a cache miss)",
      "main thread, first run only",
      all((p) => p.compileUncached.ms),
    ),
    row(
      "bounding",
      "capabilities: bounding set dropped to the 14",
      "container's thread, second phase",
      confine.map((c) => c.boundingMs),
    ),
    row(
      "install",
      "seccomp filter installed (seccomp(2), this thread only)",
      "container's thread, second phase",
      confine.map((c) => c.seccompMs),
    ),
    row(
      "capset",
      "capabilities: final capset",
      "container's thread, second phase",
      confine.map((c) => c.capsetMs),
    ),
    row(
      "cgroup-plain",
      "cgroup created, no device rules",
      "main thread, during the thread's first phase",
      cg((c) => c.plain.createMs),
    ),
    row(
      "cgroup-devices",
      "cgroup created with Docker's device rules",
      "main thread, during the thread's first phase",
      cg((c) => c.devices.createMs),
    ),
    row(
      "destroy-plain",
      "cgroup destroyed, no device rules",
      "main thread, cleanup",
      cg((c) => c.plain.destroyMs),
    ),
    row(
      "destroy-devices",
      "cgroup destroyed, with the devices hierarchy",
      "main thread, cleanup",
      cg((c) => c.devices.destroyMs),
    ),
  ];
  rows.push(
    {
      id: "devices-create",
      label: "device rules at creation (difference of the medians)",
      where: "main thread, during the thread's first phase",
      repeatMs: diff(cg((c) => c.devices.createMs), cg((c) => c.plain.createMs)),
      n: cg((c) => c.devices.createMs).length,
    },
    {
      id: "devices-destroy",
      label: "device rules at cleanup (difference of the medians)",
      where: "main thread, cleanup",
      repeatMs: diff(cg((c) => c.devices.destroyMs), cg((c) => c.plain.destroyMs)),
      n: cg((c) => c.devices.destroyMs).length,
    },
  );
  return rows;
}

/** What capabilities + seccomp + devices add to a start, in all and on the critical path. */
export interface ConfinementCost {
  totalMs: number;
  criticalMs: number;
  /** Each part: its cost and the share of it on the critical path. */
  parts: { label: string; ms: number; criticalMs: number }[];
}

/**
 * Sums the parts. The container's thread's steps and the cleanup are on the critical path
 * whole; the main thread's work during the thread's first phase only beyond the time it then
 * waited for the thread (`joinWaitMs`); Docker's filter (resolved and compiled by the thread as
 * soon as it has booted) only beyond the time the thread then waits for its configuration.
 */
export function confinementCost(p: Phases): ConfinementCost {
  const c = (id: string) => p.components.find((x) => x.id === id);
  const first = (id: string) => c(id)?.firstMs ?? c(id)?.repeatMs ?? NaN;
  const repeat = (id: string) => c(id)?.repeatMs ?? NaN;
  const at = (phase: string) => p.rows.find((r) => r.phase === phase)?.offsetMs.median ?? NaN;
  // The thread makes the filter once booted; the main thread sends its configuration at
  // "state, files": until then the thread would only wait.
  const idle = Math.max(0, at("state, files") - at("thread booted"));
  const joinSlack = Math.max(0, p.joinWaitMs);
  const filter = first("resolve") + first("compile-cached");
  const parts = [
    {
      label: "Docker's filter: profile resolved + compiled, cache hit (container's thread, idle)",
      ms: filter,
      criticalMs: Math.max(0, filter - idle),
    },
    {
      label: "device rules (main thread, during the thread's first phase)",
      ms: repeat("devices-create"),
      criticalMs: Math.max(0, repeat("devices-create") - joinSlack),
    },
    {
      label: "bounding set, seccomp install, capset (container's thread)",
      ms: repeat("bounding") + repeat("install") + repeat("capset"),
      criticalMs: repeat("bounding") + repeat("install") + repeat("capset"),
    },
    {
      label: "device rules at cleanup (main thread)",
      ms: repeat("devices-destroy"),
      criticalMs: repeat("devices-destroy"),
    },
  ];
  return {
    totalMs: parts.reduce((s, x) => s + x.ms, 0),
    criticalMs: parts.reduce((s, x) => s + x.criticalMs, 0),
    parts,
  };
}
