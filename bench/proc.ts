/**
 * Running one measured process tree. `Deno.Command` reports no resource usage, and GNU time
 * prints CPU time in hundredths of a second (too coarse for a 3 ms tool), so trials are spawned
 * with posix_spawn(3) and reaped with wait4(2), whose rusage covers the child and every
 * descendant it waited for. The bench is a child subreaper while it measures: a descendant
 * that daemonizes (podman's conmon) is re-parented to it, reaped here, and counted too. The
 * calls are base/libc.ts's, mini-docker's one binding of libc.
 *
 * Nothing else may spawn processes (Deno.Command) while a trial runs: `reapOrphans` waits for
 * any child.
 */
import * as libc from "../base/libc.ts";

const SIGKILL = 9;

/** Resource usage of a reaped process tree (struct rusage, summed or maxed over its parts). */
export type Usage = libc.Rusage;

/** A finished trial. */
export interface TrialResult extends Usage {
  /** From spawn to the reaping of the spawned process, milliseconds. */
  wallMs: number;
  /** Exit code, or 128+signal. */
  code: number;
  /** Descendants that outlived the spawned process (daemonized), reaped after it. */
  orphans: number;
  /** From spawn until the last orphan was reaped, milliseconds. */
  treeMs: number;
  /** The largest peak RSS among the orphans (their rusage is not inflated by the bench's). */
  orphanMaxRssKiB: number;
}

/** Process groups spawned and not yet reaped (killed on interrupt). */
const live = new Set<number>();

let stopped = false;

/** Whether the bench was interrupted (results from now on are meaningless). */
export function interrupted(): boolean {
  return stopped;
}

/** On interrupt: no more spawns, and every process group still running is killed. */
export function killSpawned(): void {
  stopped = true;
  for (const pgid of live) killGroup(pgid);
}

/** Makes the bench a child subreaper (or stops it): orphaned descendants come back to it. */
export function setSubreaper(on: boolean): void {
  libc.prctl(libc.PR_SET_CHILD_SUBREAPER, on ? 1 : 0);
}

/** What to spawn. */
export interface SpawnOptions {
  /** The environment, complete. */
  env: Record<string, string>;
  /** File that receives stdout and stderr (appended); /dev/null when absent. */
  log?: string;
}

/** The executable that `name` names, searched in `path` as posix_spawnp does. */
function which(name: string, path: string): string {
  if (name.includes("/")) return name;
  for (const dir of path.split(":")) {
    const file = `${dir || "."}/${name}`;
    try {
      if (Deno.statSync(file).isFile) return file;
    } catch { /* not here */ }
  }
  throw new Error(`Cannot spawn "${name}": not found in PATH`);
}

/**
 * Starts `argv` in its own process group (so that a stuck trial can be killed whole), stdin
 * from /dev/null, stdout and stderr appended to the log, every signal at its default action
 * and unblocked (Deno ignores SIGPIPE; the child must not inherit that). Returns the pid.
 */
export function spawn(argv: readonly string[], opts: SpawnOptions): number {
  if (stopped) throw new Error("Interrupted");
  const log = opts.log ?? "/dev/null";
  // Created here: posix_spawn's open would create it with mode 0.
  if (opts.log !== undefined) Deno.writeFileSync(log, new Uint8Array(), { append: true });
  const pid = libc.spawn(
    which(argv[0]!, Deno.env.get("PATH") ?? "/usr/bin:/bin"),
    argv,
    Object.entries(opts.env).map(([k, v]) => `${k}=${v}`),
    {
      setpgroup: true,
      actions: [
        { open: [0, "/dev/null", libc.O_RDONLY] },
        { open: [1, log, libc.O_WRONLY | libc.O_APPEND] },
        { dup2: [1, 2] },
      ],
    },
  );
  live.add(pid);
  return pid;
}

function exitCode(status: number): number {
  const sig = status & 0x7f;
  return sig === 0 ? (status >> 8) & 0xff : 128 + sig;
}

/** Waits (off the main thread) for `pid`; returns its exit code and the rusage of its tree. */
export async function wait(pid: number): Promise<{ code: number; usage: Usage }> {
  const waited = await libc.wait4Async(pid);
  live.delete(pid);
  return { code: exitCode(waited.status), usage: waited.usage };
}

/**
 * Reaps every child that has exited, without blocking. Returns their summed usage and how
 * many were reaped, and whether any child is left (`alive`).
 */
export function reapOrphans(): { usage: Usage; count: number; alive: boolean } {
  const usage: Usage = { userMs: 0, sysMs: 0, maxRssKiB: 0 };
  let count = 0;
  for (;;) {
    let reaped: libc.Waited;
    try {
      reaped = libc.wait4(-1, libc.WNOHANG);
    } catch (err) {
      const alive = !(err instanceof libc.SyscallError && err.errno === libc.ECHILD);
      return { usage, count, alive };
    }
    if (reaped.pid === 0) return { usage, count, alive: true };
    add(usage, reaped.usage);
    count++;
  }
}

/** Adds `b` into `a`: CPU times sum, peak RSS is the maximum. */
export function add(a: Usage, b: Usage): void {
  a.userMs += b.userMs;
  a.sysMs += b.sysMs;
  a.maxRssKiB = Math.max(a.maxRssKiB, b.maxRssKiB);
}

/** Sends SIGKILL to a process group (one already gone is no error). */
export function killGroup(pgid: number): void {
  try {
    libc.kill(-pgid, SIGKILL);
  } catch (err) {
    if (!(err instanceof libc.SyscallError && err.errno === libc.ESRCH)) throw err;
  }
}

/**
 * Runs `argv` once and measures it: wall time until the spawned process is reaped, then the
 * orphans it left (reaped until none is left, or `orphanTimeoutMs`). The trial is killed after
 * `timeoutMs`. The caller must be a subreaper for orphans to be counted.
 */
export async function trial(
  argv: readonly string[],
  opts: SpawnOptions & { timeoutMs?: number; orphanTimeoutMs?: number },
): Promise<TrialResult> {
  const start = performance.now();
  const pid = spawn(argv, opts);
  const timer = setTimeout(() => killGroup(pid), opts.timeoutMs ?? 60_000);
  let waited: Awaited<ReturnType<typeof wait>>;
  try {
    waited = await wait(pid);
  } finally {
    clearTimeout(timer);
  }
  const wallMs = performance.now() - start;
  const usage = { ...waited.usage };
  let orphans = 0;
  let orphanMaxRssKiB = 0;
  const deadline = performance.now() + (opts.orphanTimeoutMs ?? 10_000);
  for (;;) {
    const reaped = reapOrphans();
    add(usage, reaped.usage);
    orphans += reaped.count;
    orphanMaxRssKiB = Math.max(orphanMaxRssKiB, reaped.usage.maxRssKiB);
    if (!reaped.alive) break;
    if (performance.now() > deadline) {
      killGroup(pid);
      await new Promise((r) => setTimeout(r, 100));
      add(usage, reapOrphans().usage);
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const treeMs = performance.now() - start;
  return { wallMs, code: waited.code, orphans, treeMs, orphanMaxRssKiB, ...usage };
}
