/**
 * Section 5, where mini-docker's start-up time goes, measured from outside (the runtime has
 * no tracing of its own):
 *
 * - components: the same trials as the start-up table for Deno alone, Deno importing
 *   `node:path`, `node:fs`, `npm:commander`, the CLI's whole module graph
 *   (`main.ts --version`), the init stage's module graph (`main.ts __init` without a
 *   configuration: it loads, then exits 125), a what-if init entry, and the whole `run /bin/true`;
 * - module graphs: `deno info` of the CLI (cmd/program.ts) and of the init stage;
 * - a coarse timeline from `perf trace` (kernel tracepoints: little overhead), where perf works;
 * - a finer timeline from `strace -f -ttt` of whole runs, cut at the system calls that mark each
 *   step (the first source file read, the CLI's first write in the run root, the cgroup mkdirs,
 *   unshare(CLONE_NEWPID), the init's execve, its connect to the sync socket, unshare of the
 *   other namespaces, pivot_root, umount2, the payload's execve and exit, the CLI's exit), with
 *   the files opened in each phase. strace slows every traced call, so its phases give the
 *   order and the files; the perf timeline gives the durations.
 */
import { trial } from "./proc.ts";
import { median, summarize, type Summary } from "./stats.ts";
import { denoPath, REPO } from "./tools.ts";
import { type DenoInfo, denoInfo, runningModules } from "../tests/helpers/module_graph.ts";
import type { Workspace } from "./workspace.ts";

/** One component measured by trials. */
export interface ComponentRow {
  id: string;
  label: string;
  wallMs: Summary;
  cpuMs: Summary;
  failure?: string;
  /** A what-if probe (its failure is not a tool's failure). */
  optional?: boolean;
}

/** One module graph. */
export interface GraphInfo {
  entry: string;
  modules: number;
  localBytes: number;
  nodeBuiltins: string[];
  npmPackages: string[];
}

/** One phase of the timeline (median over the traced runs). */
export interface Phase {
  id: string;
  label: string;
  ms: number;
  /** Files opened during the phase, by kind (median over runs). */
  opened?: Record<string, number>;
}

/** The profile section's results. */
export interface Profile {
  components: ComponentRow[];
  graphs: GraphInfo[];
  phases: Phase[];
  tracedTotalMs: number;
  tracedRuns: number;
  /** The coarse timeline from `perf trace` (tracepoints: little overhead), when perf works. */
  perfPhases: Phase[];
  perfTotalMs: number;
  perfRuns: number;
  /** Why there is no perf timeline. */
  perfSkipped?: string;
  /** Why there is no strace timeline although the traced runs worked. */
  straceSkipped?: string;
  /** A traced run of mini-docker failed (a failure of the tool, not of the bench). */
  failure?: string;
}

const TRACED = [
  "execve",
  "clone",
  "clone3",
  "fork",
  "vfork",
  "unshare",
  "setns",
  "mount",
  "pivot_root",
  "umount2",
  "openat",
  "mkdir",
  "rmdir",
  "connect",
  "exit_group",
];

/** Runs the profile section. */
export async function profile(
  ws: Workspace,
  opts: { runs: number; tracedRuns: number; log: (line: string) => void },
): Promise<Profile> {
  const deno = denoPath();
  const probe = (name: string, code: string) => {
    const path = `${ws.dir}/probe-${name}.ts`;
    Deno.writeTextFileSync(path, code);
    // No config: the probes must not touch the repository's lock file.
    return [deno, "run", "-A", "--quiet", "--no-config", "--cached-only", path];
  };
  const main = `${REPO}/main.ts`;
  const runArgs = [deno, "run", "-A", "--quiet", main, "run", "--rootfs", ws.rootfs, "/bin/true"];
  const components: {
    id: string;
    label: string;
    argv: string[];
    ok: number;
    env?: Record<string, string>;
    /** A what-if probe: its failure is reported, not counted as a tool's failure. */
    optional?: boolean;
  }[] = [
    { id: "deno-empty", label: "deno: empty program", argv: probe("empty", ""), ok: 0 },
    {
      id: "node-path",
      label: 'deno: import "node:path"',
      argv: probe("node-path", 'import "node:path";\n'),
      ok: 0,
    },
    {
      id: "node-fs",
      label: 'deno: import "node:fs"',
      argv: probe("node-fs", 'import "node:fs";\n'),
      ok: 0,
    },
    {
      id: "commander",
      label: "deno: import commander, new Command()",
      argv: probe(
        "commander",
        'import { Command } from "npm:@commander-js/extra-typings@15.1.0";\nnew Command();\n',
      ),
      ok: 0,
    },
    {
      id: "cli-version",
      label: "mini-docker --version (commander, every command's modules)",
      argv: [deno, "run", "-A", "--quiet", main, "--version"],
      ok: 0,
    },
    {
      id: "init-entry",
      label: "what if: init entry importing only container/init.ts, --no-config",
      argv: probe(
        "init-entry",
        `import { init } from "${REPO}/container/init.ts";\ninit();\n`,
      ),
      ok: 125,
      optional: true,
    },
    {
      id: "init-load",
      label: "mini-docker __init, no container (the init's modules)",
      // The init stage's own command line; without its configuration it exits 125 at once.
      argv: [deno, "run", "-A", "--quiet", "--no-prompt", "--cached-only", main, "__init"],
      ok: 125,
    },
    { id: "run", label: "mini-docker run /bin/true", argv: runArgs, ok: 0, env: ws.mdEnv },
  ];
  const base = Deno.env.toObject();
  const samples = new Map(components.map((c) => [c.id, [] as { wall: number; cpu: number }[]]));
  const failures = new Map<string, string>();
  const log = `${ws.dir}/logs/profile.log`;
  // The CLI's npm package must be in Deno's cache before the probes (they run --cached-only).
  await trial(components.find((c) => c.id === "cli-version")!.argv, { env: base, log });
  for (let round = 0; round < opts.runs + 2; round++) {
    for (let i = 0; i < components.length; i++) {
      const c = components[(i + round) % components.length]!;
      if (failures.has(c.id)) continue;
      Deno.writeFileSync(log, new Uint8Array());
      const r = await trial(c.argv, { env: { ...base, ...c.env }, log });
      if (r.code !== c.ok) {
        failures.set(c.id, `exit status ${r.code}: ${Deno.readTextFileSync(log).trim()}`);
        opts.log(`profile: ${c.label} FAILED: ${failures.get(c.id)}`);
      } else if (round >= 2) {
        samples.get(c.id)!.push({ wall: r.wallMs, cpu: r.userMs + r.sysMs });
      }
    }
  }
  const rows: ComponentRow[] = components.map((c) => ({
    id: c.id,
    label: c.label,
    wallMs: summarize(samples.get(c.id)!.map((s) => s.wall)),
    cpuMs: summarize(samples.get(c.id)!.map((s) => s.cpu)),
    failure: failures.get(c.id),
    optional: c.optional,
  }));

  const graphs = [
    await graph(`${REPO}/cmd/run_action.ts`, "run (main.ts -> cmd/run_action.ts)"),
    await graph(`${REPO}/cmd/program.ts`, "other commands (main.ts -> cmd/program.ts)"),
    await graph(`${REPO}/container/init.ts`, "init stage (main.ts -> container/init.ts)"),
  ];

  const timelines: Timeline[] = [];
  let failure: string | undefined;
  let straceSkipped: string | undefined;
  for (let i = 0; i < opts.tracedRuns; i++) {
    const out = `${ws.dir}/logs/strace-${i}.txt`;
    const r = await trial(
      [
        "strace",
        "-f",
        "-ttt",
        "-q",
        "-s",
        "200",
        "--seccomp-bpf",
        "-e",
        `trace=${TRACED.join(",")}`,
        "-o",
        out,
        ...runArgs,
      ],
      { env: { ...base, ...ws.mdEnv }, log },
    );
    if (r.code !== 0) {
      failure = `strace run: exit status ${r.code}: ${Deno.readTextFileSync(log).trim()}`;
      break;
    }
    try {
      timelines.push(parseTimeline(Deno.readTextFileSync(out), ws));
    } catch (err) {
      // The run worked; only the cutting into phases did not (the recipe changed?).
      straceSkipped = `strace timeline: ${(err as Error).message}`;
      break;
    }
  }
  const perf = await perfRuns(runArgs, { ...base, ...ws.mdEnv }, opts.tracedRuns, ws.dir);
  const phases = PHASES.map(([id, label]) => {
    const opened: Record<string, number> = {};
    for (const kind of FILE_KINDS) {
      const n = median(timelines.map((t) => t.phases[id]?.opened[kind] ?? 0));
      if (n > 0) opened[kind] = n;
    }
    return {
      id,
      label,
      ms: median(timelines.map((t) => t.phases[id]?.ms ?? NaN)),
      opened: Object.keys(opened).length > 0 ? opened : undefined,
    };
  });
  return {
    components: rows,
    graphs,
    phases,
    tracedTotalMs: median(timelines.map((t) => t.totalMs)),
    tracedRuns: timelines.length,
    perfPhases: PERF_PHASES.map(([id, label]) => ({
      id,
      label,
      ms: median(perf.timelines.map((t) => t.phases[id]?.ms ?? NaN)),
    })),
    perfTotalMs: median(perf.timelines.map((t) => t.totalMs)),
    perfRuns: perf.timelines.length,
    perfSkipped: perf.skipped,
    straceSkipped,
    failure,
  };
}

/** Coarse phases from `perf trace`; each ends where the next begins. */
const PERF_PHASES: [string, string][] = [
  ["cli", "CLI: Deno start, modules, argv, sync socket (until unshare(CLONE_NEWPID))"],
  ["spawn", "CLI: spawn the init stage (until the child's execve)"],
  ["init-start", "init: Deno start, modules, config (until connect to the sync socket)"],
  ["init-config", "init: wait for the configuration (until unshare of mount/uts/ipc)"],
  ["init-mounts", "init: mounts (until pivot_root)"],
  ["init-pivot", "init: pivot_root + umount2(old root, MNT_DETACH)"],
  ["init-finish", "init: masked/read-only paths, cwd, the parent's go, user (until execve)"],
  ["payload", "payload: execve + /bin/true (until its exit_group)"],
  ["reap", "payload exit: namespaces torn down, the CLI reaps it (until wait4 returns)"],
  ["cli-after", "CLI: state, cgroup removal, rm -r of the layer (until its exit_group)"],
];

const PERF_EVENTS = "unshare,execve,pivot_root,umount2,exit_group,connect,wait4";
const CLONE_NEWPID = 0x20000000;

/** Runs `perf trace` on whole runs; skipped (with why) when perf cannot trace here. */
async function perfRuns(
  runArgs: string[],
  env: Record<string, string>,
  runs: number,
  dir: string,
): Promise<{ timelines: Timeline[]; skipped?: string }> {
  const log = `${dir}/logs/perf.log`;
  const timelines: Timeline[] = [];
  for (let i = 0; i < runs; i++) {
    const out = `${dir}/logs/perf-${i}.txt`;
    let r;
    try {
      r = await trial(["perf", "trace", "-o", out, "-e", PERF_EVENTS, "--", ...runArgs], {
        env,
        log,
      });
    } catch (err) {
      return { timelines, skipped: `perf: ${(err as Error).message}` };
    }
    if (r.code !== 0) {
      const why = Deno.readTextFileSync(log).trim().split("\n")[0];
      return { timelines, skipped: `perf trace: exit status ${r.code}: ${why}` };
    }
    try {
      timelines.push(parsePerf(Deno.readTextFileSync(out)));
    } catch (err) {
      return { timelines, skipped: `perf trace: ${(err as Error).message}` };
    }
  }
  return { timelines };
}

/**
 * The coarse phases of one `perf trace` output. Lines look like
 * `   147.138 ( 0.054 ms): deno/23317 unshare(unshare_flags: 536870912) = 0`, times in ms from
 * the end of the CLI's own execve; perf prints no strings, so processes are told apart by
 * thread id: the CLI is the first, the init stage the first other thread that calls execve.
 */
export function parsePerf(text: string): Timeline {
  const events: {
    t: number;
    dur: number;
    tid: number;
    name: string;
    args: string;
    result: string;
  }[] = [];
  // A call interrupted by another thread's event is printed in two lines: "name(args) ..." at
  // entry, then "... [continued]: name()) = result" (time "?") at exit.
  const head = String.raw`^\s*([\d.]+|\?) \(\s*([\d.]*)(?: ms)?\s*\): \S+?\/(\d+) +`;
  const whole = new RegExp(`${head}(\\w+)\\((.*)\\)\\s+= (.*)$`);
  const entry = new RegExp(`${head}(\\w+)\\((.*)\\)\\s+\\.\\.\\.\\s*$`);
  const exit = new RegExp(`${head}\\.\\.\\. \\[continued\\]: (\\w+)\\(\\)\\)\\s+= (.*)$`);
  for (const line of text.split("\n")) {
    const w = whole.exec(line) ?? entry.exec(line);
    if (w !== null && w[1] !== "?") {
      events.push({
        t: Number(w[1]),
        dur: Number(w[2] || 0),
        tid: Number(w[3]),
        name: w[4]!,
        args: w[5]!,
        result: (w[6] ?? "").trim(),
      });
      continue;
    }
    const c = exit.exec(line);
    if (c === null) continue;
    const open = events.findLast((e) => e.tid === Number(c[3]) && e.name === c[4] && !e.result);
    if (open !== undefined) {
      open.result = c[5]!.trim();
      open.dur = Number(c[2] || 0);
    }
  }
  const marks: Record<string, number> = { start: 0 };
  const mark = (k: string, t: number) => {
    if (marks[k] === undefined) marks[k] = t;
  };
  // The CLI makes the first unshare; the init stage is the thread that calls pivot_root.
  const cli = events.find((e) => e.name === "unshare")?.tid;
  const init = events.find((e) => e.name === "pivot_root")?.tid;
  for (const e of events) {
    const flags = Number(/unshare_flags: (\d+)/.exec(e.args)?.[1] ?? 0);
    if (e.tid === cli) {
      if (e.name === "unshare" && flags & CLONE_NEWPID) mark("cli-unshare", e.t);
      if (e.name === "exit_group") mark("cli-exit", e.t);
    }
    // Any CLI thread may reap the init stage (now the payload).
    if (e.name === "wait4" && init !== undefined && e.result.startsWith(`${init} `)) {
      mark("cli-reaped", e.t + e.dur);
    }
    if (e.tid !== init) continue;
    if (e.name === "execve") {
      mark(marks["init-exec"] === undefined ? "init-exec" : "payload-exec", e.t);
    }
    if (e.name === "connect") mark("init-connect", e.t);
    if (e.name === "unshare") mark("init-unshare", e.t);
    if (e.name === "pivot_root") mark("init-pivot", e.t);
    if (e.name === "umount2" && marks["init-pivot"] !== undefined) {
      mark("init-detached", e.t + e.dur);
    }
    if (e.name === "exit_group" && marks["payload-exec"] !== undefined) mark("payload-exit", e.t);
  }
  if (marks["init-detached"] === undefined && marks["init-pivot"] !== undefined) {
    marks["init-detached"] = marks["init-pivot"]!;
  }
  const order = [
    "start",
    "cli-unshare",
    "init-exec",
    "init-connect",
    "init-unshare",
    "init-pivot",
    "init-detached",
    "payload-exec",
    "payload-exit",
    "cli-reaped",
    "cli-exit",
  ];
  const missing = order.filter((k) => marks[k] === undefined);
  if (missing.length > 0) {
    throw new Error(`trace of ${events.length} events lacks ${missing.join(", ")}`);
  }
  const phases: Timeline["phases"] = {};
  PERF_PHASES.forEach(([id], i) => {
    phases[id] = { ms: marks[order[i + 1]!]! - marks[order[i]!]!, opened: {} };
  });
  return { totalMs: marks["cli-exit"]!, phases };
}

/** The module graph of `entry`, from `deno info --json`. */
async function graph(entry: string, label: string): Promise<GraphInfo> {
  let info: DenoInfo;
  try {
    info = await denoInfo(denoPath(), entry, REPO);
  } catch {
    return { entry: label, modules: 0, localBytes: 0, nodeBuiltins: [], npmPackages: [] };
  }
  const modules = runningModules(info);
  const local = modules.filter((m) => m.specifier.startsWith("file:"));
  const npm = new Set<string>();
  for (const stack = modules.flatMap((m) => m.npmPackage ?? []); stack.length > 0;) {
    const id = stack.pop()!;
    if (npm.has(id)) continue;
    npm.add(id);
    stack.push(...(info.npmPackages?.[id]?.dependencies ?? []));
  }
  // main.ts is loaded too (it picks the stage), once, by both.
  const mainSize = (() => {
    try {
      return Deno.statSync(`${REPO}/main.ts`).size;
    } catch {
      return 0;
    }
  })();
  return {
    entry: label,
    modules: local.length + 1,
    localBytes: local.reduce((sum, m) => sum + (m.size ?? 0), 0) + mainSize,
    nodeBuiltins: modules.filter((m) => m.specifier.startsWith("node:")).map((m) => m.specifier),
    npmPackages: [...npm].map((id) => info.npmPackages?.[id])
      .filter((p) => p !== undefined).map((p) => `${p.name}@${p.version}`),
  };
}

/** Phases of one traced run, in order; each ends where the next begins. */
const PHASES: [string, string][] = [
  ["cli-deno", "CLI: Deno starts, until it reads the first source file"],
  ["cli-modules", "CLI: loads main.ts and the fast argv parser, parses (until the sync socket)"],
  ["cli-prespawn", "CLI: sync socket, libc, unshare(CLONE_NEWPID)"],
  ["spawn", "CLI: spawn the init stage (unshare -> the child's execve)"],
  ["init-deno", "init: Deno starts, until it reads the first source file"],
  ["init-modules", "init: loads its modules, parses the config (until connect to the sync socket)"],
  ["init-config", "init: waits for its configuration (until unshare of mount/uts/ipc)"],
  ["init-mounts", "init: overlay, /proc, /dev, /sys, /etc files (until pivot_root)"],
  ["init-pivot", "init: pivot_root, then umount2(old root, MNT_DETACH) (until it returns)"],
  ["init-finish", "init: masked/read-only paths, cwd, the go (cgroup move done), user"],
  ["payload", "payload: /bin/true runs"],
  ["cli-after", "CLI: notices the exit, state, cgroup and layer removal (until exit_group)"],
  ["exit", "CLI: process exit (exit_group until the process is gone)"],
];

const FILE_KINDS = ["repo .ts", "deno cache", "npm", "cgroupfs", "other"] as const;

export interface Timeline {
  totalMs: number;
  phases: Record<string, { ms: number; opened: Record<string, number> }>;
}

interface Call {
  pid: number;
  t: number;
  name: string;
  args: string;
  result: string;
}

/** Splits strace output into calls (unfinished/resumed pairs joined) and exits. */
function calls(text: string): { calls: Call[]; exits: Map<number, number> } {
  const pending = new Map<number, { t: number; text: string }>();
  const out: Call[] = [];
  const exits = new Map<number, number>();
  for (const line of text.split("\n")) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    const pid = Number(m[1]);
    const t = Number(m[2]) * 1000;
    let body = m[3]!;
    if (body.startsWith("+++")) {
      exits.set(pid, t);
      continue;
    }
    if (body.startsWith("---")) continue;
    if (body.endsWith("<unfinished ...>")) {
      pending.set(pid, { t, text: body.slice(0, -"<unfinished ...>".length) });
      continue;
    }
    let start = t;
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(body);
    if (resumed !== null) {
      const p = pending.get(pid);
      if (p === undefined) continue;
      pending.delete(pid);
      body = p.text + resumed[1];
      start = p.t;
    }
    const c = /^(\w+)\((.*)\)\s+=\s+(.*)$/.exec(body);
    if (c === null) {
      // exit_group never returns: "exit_group(0) = ?" is matched above; anything else is noise.
      continue;
    }
    out.push({ pid, t: start, name: c[1]!, args: c[2]!, result: c[3]! });
  }
  return { calls: out, exits };
}

/** A source file of the repository (the first one read marks the end of Deno's own start). */
function isRepoTs(path: string): boolean {
  return path.startsWith(`${REPO}/`) && path.endsWith(".ts");
}

/** The phases of one strace output. */
function parseTimeline(text: string, ws: Workspace): Timeline {
  const { calls: list, exits } = calls(text);
  if (list.length === 0) throw new Error("empty trace");
  // Which process each thread belongs to: the CLI, the init stage, the payload.
  const role = new Map<number, string>();
  const cliPid = list[0]!.pid;
  role.set(cliPid, "cli");
  const marks: Record<string, number> = { start: list[0]!.t };
  const mark = (key: string, t: number) => {
    if (marks[key] === undefined) marks[key] = t;
  };
  const runRoot = ws.mdEnv.MINI_DOCKER_RUNROOT!;
  const dataRoot = ws.mdEnv.MINI_DOCKER_ROOT!;
  const opens: { t: number; kind: string }[] = [];
  let payloadPid = -1;
  let umountTid = -1;
  for (const c of list) {
    const who = role.get(c.pid) ?? "other";
    const path = /"([^"]*)"/.exec(c.args)?.[1] ?? "";
    const ok = !c.result.startsWith("-1");
    if (["clone", "clone3", "fork", "vfork"].includes(c.name)) {
      const child = Number(/^(\d+)/.exec(c.result)?.[1] ?? NaN);
      if (child > 0) role.set(child, c.args.includes("CLONE_THREAD") ? who : `child-of-${who}`);
      continue;
    }
    if (c.name === "execve" && ok) {
      if (c.args.includes('"__init"')) {
        role.set(c.pid, "init");
        mark("init-exec", c.t);
      } else if (who === "init") {
        role.set(c.pid, "payload");
        payloadPid = c.pid;
        mark("payload-exec", c.t);
      }
      continue;
    }
    if (c.name === "openat") {
      const kind = isRepoTs(path)
        ? "repo .ts"
        : /\/npm\/|node_modules/.test(path)
        ? "npm"
        : /\/deno\//.test(path) && !path.startsWith(REPO)
        ? "deno cache"
        : path.startsWith("/sys/fs/cgroup")
        ? "cgroupfs"
        : "other";
      opens.push({ t: c.t, kind });
    }
    if (who === "cli") {
      if (c.name === "openat" && isRepoTs(path)) mark("cli-main", c.t);
      if (
        (c.name === "mkdir" || c.name === "openat") &&
        (path.startsWith(runRoot) || path.startsWith(dataRoot))
      ) mark("cli-code", c.t);
      if (c.name === "unshare" && c.args.includes("CLONE_NEWPID")) mark("cli-unshare", c.t);
      if (c.name === "exit_group") mark("cli-exit", c.t);
    } else if (who === "init") {
      // The same thread's next call after umount2: umount2 has returned by then.
      if (c.pid === umountTid) mark("init-detached", c.t);
      if (c.name === "umount2" && marks["init-pivot"] !== undefined && umountTid < 0) {
        umountTid = c.pid;
        continue;
      }
      if (c.name === "openat" && isRepoTs(path)) mark("init-main", c.t);
      if (c.name === "connect") mark("init-connect", c.t);
      if (c.name === "unshare") mark("init-unshare", c.t);
      if (c.name === "pivot_root") mark("init-pivot", c.t);
    }
  }
  if (payloadPid > 0 && exits.has(payloadPid)) mark("payload-exit", exits.get(payloadPid)!);
  mark("end", exits.get(cliPid) ?? list.at(-1)!.t);
  // marks in phase order: each phase runs from its mark to the next one.
  const order = [
    "start",
    "cli-main",
    "cli-code",
    "cli-unshare",
    "init-exec",
    "init-main",
    "init-connect",
    "init-unshare",
    "init-pivot",
    "init-detached",
    "payload-exec",
    "payload-exit",
    "cli-exit",
    "end",
  ];
  // Without a detach (another pivot recipe), that phase is empty rather than the trace unusable.
  if (marks["init-detached"] === undefined) marks["init-detached"] = marks["payload-exec"]!;
  const missing = order.filter((k) => marks[k] === undefined);
  if (missing.length > 0) throw new Error(`trace lacks ${missing.join(", ")}`);
  const phases: Timeline["phases"] = {};
  PHASES.forEach(([id], i) => {
    const from = marks[order[i]!]!;
    const to = marks[order[i + 1]!]!;
    const opened: Record<string, number> = {};
    for (const o of opens) if (o.t >= from && o.t < to) opened[o.kind] = (opened[o.kind] ?? 0) + 1;
    phases[id] = { ms: to - from, opened };
  });
  return { totalMs: marks.end! - marks.start!, phases };
}
