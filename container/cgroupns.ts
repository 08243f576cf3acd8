/**
 * A new cgroup namespace on cgroup v2: the window in which mini-docker, the whole process, is in
 * the container's cgroup.
 *
 * A new cgroup namespace is rooted at the cgroup of the thread that creates it (unshare), and
 * the first process must be born in that cgroup for "/" to be its own. On v1 the container's
 * thread joins the cgroup alone (each hierarchy's `tasks`). On v2 a domain cgroup takes whole
 * processes only (`cgroup.procs`), and the first process is posix_spawned: no code of ours runs
 * in it before its command. So, for a new cgroup namespace on v2 only:
 *
 * 1. the cgroup is created with its device rules but without its limits (`deferLimits`): while
 *    mini-docker is inside, its ~30 threads count in `pids.current` (a thread that the runtime
 *    starts then would fail against a small `pids.max`), its page faults and kernel objects are
 *    charged to the container's memory (a small `memory.max` would OOM-kill mini-docker), and
 *    `cpu.max` would throttle it;
 * 2. the container's thread writes "0" to the container's `cgroup.procs` (descriptors opened by
 *    the parent: the kernel checks the opener's credentials and cgroup namespace), which moves
 *    the whole process; unshares the cgroup namespace; and spawns the first process, born there;
 * 3. once that process has arrived at its gate (it waits there: nothing of the user's runs yet),
 *    the parent moves mini-docker back into its own cgroup (`close`), writes the limits, and
 *    only then lets the process go on.
 *
 * The window is closed on every path: the thread leaves by itself when its spawn fails, and the
 * parent closes it when the thread reports or the process arrives, whichever comes first, and in
 * its `finally`. If mini-docker's own cgroup cannot take it back (removed, or given children
 * meanwhile), the root cgroup does: mini-docker never stays in a container's cgroup, whose removal
 * would kill it.
 *
 * Nothing else of this process may start a process during the window (it would be born in the
 * container's cgroup, and stay there): `quiet()` is awaited before every spawn of the parent
 * (runProgram, the /proc helper), and windows of two containers (the supervisor) never overlap.
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
  await quiet();
  let done!: () => void;
  open = new Promise((resolve) => done = resolve);
  return () => {
    open = undefined;
    done();
  };
}

/** The `cgroup.procs` file of this process's own v2 cgroup (read from /proc/self/cgroup). */
export function ownProcsFile(): string {
  const own = /^0::(\/.*)$/m.exec(Deno.readTextFileSync("/proc/self/cgroup"))?.[1] ?? "/";
  return `${CGROUP_ROOT}${own === "/" ? "" : own}/cgroup.procs`;
}

/**
 * The parent's side of a window: `fds` are the descriptors given to the thread (join: the
 * container's `cgroup.procs`; leave: this process's own). `close` moves this process back
 * (idempotent), and reports how long the window was open.
 */
export class CgroupnsWindow {
  readonly #leave: number;
  #since = performance.now();
  #closedAfter: number | undefined;

  constructor(leave: number) {
    this.#leave = leave;
  }

  /** Marks the moment the thread is told to spawn (it joins the cgroup then). */
  opening(): void {
    this.#since = performance.now();
  }

  /** Moves this whole process back into its own cgroup, or else into the root cgroup. */
  close(): void {
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
    this.#closedAfter ??= performance.now() - this.#since;
  }

  /** Milliseconds from `opening` (the spawn's configuration sent) to the first close. */
  get ms(): number | undefined {
    return this.#closedAfter;
  }
}
