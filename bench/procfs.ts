/**
 * What /proc says about the containers' processes: which payloads run (a process whose command
 * line is the payload's and whose PID namespace is not ours has been exec'd inside a
 * container), the process tree of a runtime, and resident memory (RSS and PSS).
 */

const SELF_PID_NS = Deno.readLinkSync("/proc/self/ns/pid");

/** PIDs listed in /proc. */
export function allPids(): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (/^\d+$/.test(e.name)) pids.push(Number(e.name));
  }
  return pids;
}

function read(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined; // exited meanwhile
  }
}

/**
 * Finds processes running `argv` inside a PID namespace other than ours, cheaply enough to poll
 * while 100 processes start on 2 CPUs: a process never changes its own PID namespace, so each
 * PID is classified once, and only the command lines of processes in other namespaces are read.
 */
export class PayloadWatcher {
  readonly #want: string;
  /** PID -> whether it lives in another PID namespace. */
  readonly #inOther = new Map<number, boolean>();

  constructor(argv: readonly string[]) {
    this.#want = argv.join("\0") + "\0";
  }

  /** The host PIDs of the payloads running now. */
  look(): number[] {
    const found: number[] = [];
    const alive = new Set<number>();
    for (const pid of allPids()) {
      alive.add(pid);
      let other = this.#inOther.get(pid);
      if (other === undefined) {
        try {
          other = Deno.readLinkSync(`/proc/${pid}/ns/pid`) !== SELF_PID_NS;
        } catch {
          continue; // exited meanwhile
        }
        this.#inOther.set(pid, other);
      }
      if (other && read(`/proc/${pid}/cmdline`) === this.#want) found.push(pid);
    }
    // A PID that went away may be reused by another process.
    for (const pid of this.#inOther.keys()) if (!alive.has(pid)) this.#inOther.delete(pid);
    return found;
  }
}

/** Whether `pid` lives in a PID namespace other than ours (a container's process). */
export function inContainer(pid: number): boolean {
  try {
    return Deno.readLinkSync(`/proc/${pid}/ns/pid`) !== SELF_PID_NS;
  } catch {
    return false;
  }
}

/** Parent PID of every process. */
export function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const pid of allPids()) {
    const stat = read(`/proc/${pid}/stat`);
    if (stat === undefined) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    map.set(pid, Number(rest[1]));
  }
  return map;
}

/** `roots` and all their descendants. */
export function descendants(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents()) {
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...children.get(pid) ?? []);
  }
  return out;
}

/** Resident memory of one process, KiB: RSS, and PSS (shared pages divided among sharers). */
export interface Resident {
  rssKiB: number;
  pssKiB: number;
}

/** RSS and PSS from /proc/PID/smaps_rollup (zero when the process is gone). */
export function resident(pid: number): Resident {
  const text = read(`/proc/${pid}/smaps_rollup`) ?? "";
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return { rssKiB: field("Rss"), pssKiB: field("Pss") };
}

/** Sends SIGKILL to each PID (those already gone are skipped). */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* exited */ }
  }
}
