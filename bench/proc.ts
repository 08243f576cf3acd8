/**
 * Running one measured process tree. `Deno.Command` reports no resource usage, and GNU time
 * prints CPU time in hundredths of a second (too coarse for a 3 ms tool), so trials are spawned
 * with posix_spawn(3) and reaped with wait4(2), whose rusage covers the child and every
 * descendant it waited for. The bench is a child subreaper while it measures: a descendant
 * that daemonizes (podman's conmon) is re-parented to it, reaped here, and counted too.
 *
 * Only this module calls libc. Nothing else may spawn processes (Deno.Command) while a trial
 * runs: `reapOrphans` waits for any child.
 */

const SYMBOLS = {
  posix_spawnp: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setpgroup: { parameters: ["buffer", "i32"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  sigdelset: { parameters: ["buffer", "i32"], result: "i32" },
  wait4: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  wait4_async: {
    name: "wait4",
    parameters: ["i32", "buffer", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;
function libc() {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

const POSIX_SPAWN_SETPGROUP = 0x02;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const ECHILD = 10;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CREAT = 0o100;
const O_APPEND = 0o2000;
const SIGKILL = 9;

/** Resource usage of a reaped process tree (struct rusage, summed or maxed over its parts). */
export interface Usage {
  /** User and system CPU time, milliseconds. */
  userMs: number;
  sysMs: number;
  /** ru_maxrss: the peak resident set of the largest single process, KiB. */
  maxRssKiB: number;
}

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

const encoder = new TextEncoder();
const cstr = (s: string) => encoder.encode(s + "\0");

/** A NULL-terminated char*[]; the strings are returned too, to keep them alive. */
function cArray(items: readonly string[]): { array: BigUint64Array; keep: Uint8Array[] } {
  const keep = items.map(cstr);
  const array = new BigUint64Array(items.length + 1);
  keep.forEach((s, i) => array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s))));
  return { array, keep };
}

function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
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
  if (libc().prctl(PR_SET_CHILD_SUBREAPER, on ? 1n : 0n, 0n, 0n, 0n) !== 0) {
    throw new Error(`prctl(PR_SET_CHILD_SUBREAPER): errno ${errno()}`);
  }
}

/** What to spawn. */
export interface SpawnOptions {
  /** The environment, complete. */
  env: Record<string, string>;
  /** File that receives stdout and stderr (appended); /dev/null when absent. */
  log?: string;
}

/**
 * Starts `argv` in its own process group (so that a stuck trial can be killed whole), stdin
 * from /dev/null, default signal dispositions and an empty signal mask (Deno ignores SIGPIPE;
 * the child must not inherit that). Returns the pid.
 */
export function spawn(argv: readonly string[], opts: SpawnOptions): number {
  if (stopped) throw new Error("Interrupted");
  const c = libc();
  const actions = new Uint8Array(256); // posix_spawn_file_actions_t is 80 bytes on glibc x86_64
  const attr = new Uint8Array(1024); // posix_spawnattr_t is 336 bytes
  const sigs = new Uint8Array(128);
  const empty = new Uint8Array(128);
  const devNull = cstr("/dev/null");
  const log = cstr(opts.log ?? "/dev/null");
  c.posix_spawn_file_actions_init(actions);
  c.posix_spawnattr_init(attr);
  try {
    c.posix_spawn_file_actions_addopen(actions, 0, devNull, O_RDONLY, 0);
    c.posix_spawn_file_actions_addopen(actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644);
    c.posix_spawn_file_actions_adddup2(actions, 1, 2);
    c.sigfillset(sigs);
    c.sigdelset(sigs, SIGKILL);
    c.sigdelset(sigs, 19 /* SIGSTOP */);
    c.sigemptyset(empty);
    c.posix_spawnattr_setsigdefault(attr, sigs);
    c.posix_spawnattr_setsigmask(attr, empty);
    c.posix_spawnattr_setpgroup(attr, 0);
    c.posix_spawnattr_setflags(
      attr,
      POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK,
    );
    const args = cArray(argv);
    const envp = cArray(Object.entries(opts.env).map(([k, v]) => `${k}=${v}`));
    const pid = new Int32Array(1);
    const rc = c.posix_spawnp(
      new Uint8Array(pid.buffer),
      args.keep[0]!,
      actions,
      attr,
      new Uint8Array(args.array.buffer),
      new Uint8Array(envp.array.buffer),
    );
    if (rc !== 0) throw new Error(`Cannot spawn "${argv[0]}": errno ${rc}`);
    live.add(pid[0]!);
    return pid[0]!;
  } finally {
    c.posix_spawnattr_destroy(attr);
    c.posix_spawn_file_actions_destroy(actions);
  }
}

/** struct rusage (x86_64): ru_utime, ru_stime (timeval), ru_maxrss (long, KiB). */
function parseRusage(buf: Uint8Array): Usage {
  const v = new DataView(buf.buffer);
  const tv = (off: number) =>
    Number(v.getBigInt64(off, true)) * 1000 + Number(v.getBigInt64(off + 8, true)) / 1000;
  return { userMs: tv(0), sysMs: tv(16), maxRssKiB: Number(v.getBigInt64(32, true)) };
}

function exitCode(status: number): number {
  const sig = status & 0x7f;
  return sig === 0 ? (status >> 8) & 0xff : 128 + sig;
}

/** Waits (off the main thread) for `pid`; returns its exit code and the rusage of its tree. */
export async function wait(pid: number): Promise<{ code: number; usage: Usage }> {
  const status = new Int32Array(1);
  const rusage = new Uint8Array(144);
  const rc = await libc().wait4_async(pid, new Uint8Array(status.buffer), 0, rusage);
  if (rc !== pid) throw new Error(`wait4(${pid}) failed`);
  live.delete(pid);
  return { code: exitCode(status[0]!), usage: parseRusage(rusage) };
}

/**
 * Reaps every child that has exited, without blocking. Returns their summed usage and how
 * many were reaped, and whether any child is left (`alive`).
 */
export function reapOrphans(): { usage: Usage; count: number; alive: boolean } {
  const usage: Usage = { userMs: 0, sysMs: 0, maxRssKiB: 0 };
  let count = 0;
  const status = new Int32Array(1);
  const rusage = new Uint8Array(144);
  for (;;) {
    const rc = libc().wait4(-1, new Uint8Array(status.buffer), WNOHANG, rusage);
    if (rc > 0) {
      add(usage, parseRusage(rusage));
      count++;
      continue;
    }
    const alive = rc === 0 || errno() !== ECHILD;
    return { usage, count, alive };
  }
}

/** Adds `b` into `a`: CPU times sum, peak RSS is the maximum. */
export function add(a: Usage, b: Usage): void {
  a.userMs += b.userMs;
  a.sysMs += b.sysMs;
  a.maxRssKiB = Math.max(a.maxRssKiB, b.maxRssKiB);
}

/** Sends SIGKILL to a process group. */
export function killGroup(pgid: number): void {
  libc().kill(-pgid, SIGKILL);
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
