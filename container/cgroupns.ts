/**
 * A new cgroup namespace on cgroup v2: the window in which mini-docker, the whole process, is in
 * the container's cgroup.
 *
 * A new cgroup namespace is rooted at the cgroup that its creator (the thread that unshares) is
 * in at that moment, and keeps that root wherever its processes move later. On v1 the
 * container's thread joins the cgroup alone (each hierarchy's `tasks`). On v2 a domain cgroup
 * takes whole processes only (`cgroup.procs`). So, for a new cgroup namespace on v2 only:
 *
 * 1. the cgroup is created with its device rules but without its limits (`deferLimits`): while
 *    mini-docker is inside, its ~30 threads count in `pids.current` (a thread that the runtime
 *    starts then would fail against a small `pids.max`: pids.max is checked at clone, not at
 *    migration), its page faults and kernel objects are charged to the container's memory (a
 *    small `memory.max` would reclaim or OOM-kill in mini-docker), and `cpu.max` would
 *    throttle it;
 * 2. the container's thread, with descriptors opened by the parent (the kernel checks the
 *    opener's credentials and cgroup namespace: Linux 5.16 and later), writes "0" to the
 *    container's `cgroup.procs`, which moves the whole process; unshares the cgroup namespace
 *    (rooted there now); and writes "0" to this process's own `cgroup.procs`: out again, before
 *    anything else (recipe.ts `spawnContainer`). The window is those three calls (on kernels
 *    before 5.16 the last is refused, being checked against the writer's new namespace: the
 *    parent's `ensureOut` then moves it out once the first process is at its gate);
 * 3. the thread spawns the first process as for any v2 container: born in mini-docker's cgroup
 *    but in the new namespace, it waits at its gate; the parent writes the limits, then moves it
 *    into the cgroup (its namespace's root: `/proc/self/cgroup` reads "0::/"), and lets it go.
 *
 * The window is closed on every path: the thread leaves in its `finally` when a step fails, and
 * the parent checks once the thread has spawned or failed (`ensureOut`: a thread stopped
 * between its writes); if mini-docker's own cgroup cannot take it back (removed, or given
 * children meanwhile), the root cgroup does. mini-docker never stays in a container's cgroup,
 * whose removal would kill it.
 *
 * Nothing else of this process may start a process during the window (it would be born in the
 * container's cgroup, and stay there): `quiet()` is awaited before every spawn of the parent
 * (runProgram, the /proc helper), and the starts of two containers (the supervisor) hold
 * `exclusive()` from their thread's spawn to their first process's arrival at its gate.
 */
import * as libc from "../base/libc.ts";
import { CGROUP_ROOT } from "../cgroups/manager.ts";

let open: Promise<void> | undefined;

/** Resolves once no window is open in this process. */
export async function quiet(): Promise<void> {
  while (open !== undefined) await open;
}

/**
 * Marks a window (or a spawn that must not overlap one) open, once no other is; the result
 * closes the mark.
 */
export async function exclusive(): Promise<() => void> {
  // Checked and taken in one step (no await between): two starts that wait for the same window
  // to close must not both take the next one.
  while (open !== undefined) await open;
  let done!: () => void;
  open = new Promise((resolve) => done = resolve);
  return () => {
    open = undefined;
    done();
  };
}

/** This process's own v2 cgroup, as /proc/self/cgroup names it ("/" for the root). */
export function ownCgroup(): string {
  return /^0::(\/.*)$/m.exec(Deno.readTextFileSync("/proc/self/cgroup"))?.[1] ?? "/";
}

/** The `cgroup.procs` file of the v2 cgroup `path` (as `ownCgroup` gives it). */
export function procsFileOf(path: string): string {
  return `${CGROUP_ROOT}${path === "/" ? "" : path}/cgroup.procs`;
}

/**
 * The parent's side of a window: `leave` is the descriptor of this process's own `cgroup.procs`
 * that the thread writes too. `ensureOut` moves this process back unless it is there already.
 */
export class CgroupnsWindow {
  readonly #leave: number;
  readonly #own: string;

  constructor(leave: number, own: string) {
    this.#leave = leave;
    this.#own = own;
  }

  /** This process back in its own cgroup (or else the root cgroup) if it is not there. */
  ensureOut(): void {
    if (ownCgroup() === this.#own) return;
    const zero = new TextEncoder().encode("0");
    try {
      libc.writeAll(this.#leave, zero);
    } catch {
      // Our cgroup is gone or has children now: anywhere but the container's.
      const root = libc.open(`${CGROUP_ROOT}/cgroup.procs`, libc.O_WRONLY | libc.O_CLOEXEC);
      try {
        libc.writeAll(root, zero);
      } finally {
        libc.close(root);
      }
    }
  }
}
