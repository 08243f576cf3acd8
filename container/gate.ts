/**
 * The gate where a container's first process waits before its execve, so that the parent can
 * finish what posix_spawn cannot do in the child: move it into its cgroup (cgroup v2 moves whole
 * processes only), mount its /proc (kernels before 6.18), set its resource limits. Nothing of the
 * command runs before that, and nothing of it runs if mini-docker dies meanwhile.
 *
 * Three FIFOs in a private directory of the run root, opened by the child through posix_spawn's
 * file actions (recipe.ts spawnActions), relative to that directory:
 *
 * | child (file actions)                      | parent (this module)                          |
 * |-------------------------------------------|-----------------------------------------------|
 * | open "here" for writing: blocks until...  | `arrival()`: open "here" for reading          |
 * | open "gate" for reading: blocks until...  | cgroup, /proc, limits; then `release()`:      |
 * |                                           | open "check" for reading, "gate" for writing  |
 * | open "check" for writing, non-blocking:   | (holds "check" open until the spawn returned) |
 * | fails (ENXIO) unless mini-docker reads it |                                               |
 * | execve                                    | the thread's posix_spawn returns              |
 *
 * The last step tells a release by mini-docker from a release by the watcher (watcher.ts), which
 * opens "gate" when mini-docker has died: the child then fails its check and exits, unstarted.
 */
import * as libc from "../base/libc.ts";
import { runRoot } from "../base/paths.ts";
import { ownerTag } from "./state.ts";

/** A gate for one container start. Dispose of it once the spawn has returned. */
export class Gate implements Disposable {
  /** Its directory, and a descriptor of it that the child's file actions start from. */
  readonly dir: string;
  readonly dirFd: number;
  #fds: number[] = [];

  private constructor(dir: string, dirFd: number) {
    this.dir = dir;
    this.dirFd = dirFd;
  }

  /**
   * Creates the directory and its FIFOs: under the run root, named after this process; or `at`
   * (the OCI runtime's `create`, whose gate outlives it: `start`, another process, opens it with
   * `releaseHeld`).
   */
  static create(at?: string): Gate {
    const parent = `${runRoot()}/gates`;
    if (at === undefined) Deno.mkdirSync(parent, { recursive: true, mode: 0o700 });
    else Deno.mkdirSync(at, { mode: 0o700 });
    // Named after this process: a clean-up removes it once this process is gone, never before.
    const dir = at ?? Deno.makeTempDirSync({ dir: parent, prefix: `${ownerTag()}-` });
    // The child reaches them through its descriptor of the directory, already as the container's
    // user: the directory only searchable, the FIFOs open to anyone who gets that far (no one
    // else can: the run root is root's alone).
    Deno.chmodSync(dir, 0o711);
    for (const name of ["here", "gate", "check"]) {
      libc.mknod(`${dir}/${name}`, libc.S_IFIFO | 0o666, 0);
      Deno.chmodSync(`${dir}/${name}`, 0o666);
    }
    const fd = libc.open(dir, libc.O_PATH | libc.O_DIRECTORY | libc.O_CLOEXEC);
    return new Gate(dir, fd);
  }

  /** Resolves when the child has arrived at the gate. */
  async arrival(): Promise<void> {
    this.#fds.push(await libc.openAsync(`${this.dir}/here`, libc.O_RDONLY | libc.O_CLOEXEC));
  }

  /** Lets the child go on to its execve. */
  async release(): Promise<void> {
    this.#fds.push(
      libc.open(`${this.dir}/check`, libc.O_RDONLY | libc.O_NONBLOCK | libc.O_CLOEXEC),
    );
    this.#fds.push(await libc.openAsync(`${this.dir}/gate`, libc.O_WRONLY | libc.O_CLOEXEC));
  }

  /**
   * Wakes this process's own pending `arrival()` or `release()` when the child will never come
   * (the thread failed, the child died): each FIFO is opened from the other side, once.
   */
  cancel(): void {
    for (const [name, flags] of [["here", libc.O_WRONLY], ["gate", libc.O_RDONLY]] as const) {
      try {
        libc.close(libc.open(`${this.dir}/${name}`, flags | libc.O_NONBLOCK | libc.O_CLOEXEC));
      } catch { /* nobody waits there */ }
    }
  }

  /**
   * Keeps the directory (its process waits there for another process's `releaseHeld`) and
   * closes this process's descriptors.
   */
  hold(): void {
    this.#held = true;
  }

  #held = false;

  [Symbol.dispose](): void {
    for (const fd of this.#fds.splice(0)) libc.close(fd);
    libc.close(this.dirFd);
    if (this.#held) return;
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch { /* gone */ }
  }
}

/**
 * Releases a process that another mini-docker process left waiting at the gate in `dir` (the
 * OCI runtime's `create`, then `start`): "check" is held open until the process has passed its
 * check, which it has once it has closed its gate descriptors (its descriptor 4, "here", open
 * since it arrived, goes with them: see recipe.ts spawnActions). Resolves then, or when it died.
 */
export async function releaseHeld(dir: string, pid: number): Promise<void> {
  const check = libc.open(`${dir}/check`, libc.O_RDONLY | libc.O_NONBLOCK | libc.O_CLOEXEC);
  try {
    const gate = libc.open(`${dir}/gate`, libc.O_WRONLY | libc.O_NONBLOCK | libc.O_CLOEXEC);
    libc.close(gate);
    for (let i = 0;; i++) {
      if (!holdsHere(pid)) return;
      await new Promise((r) => setTimeout(r, i < 50 ? 1 : 10));
    }
  } finally {
    libc.close(check);
  }
}

/** Whether process `pid` has its gate's "here" open (at descriptor 4, or above --preserve-fds). */
function holdsHere(pid: number): boolean {
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`).endsWith("/here")) return true;
      } catch { /* closed meanwhile */ }
    }
  } catch { /* the process is gone */ }
  return false;
}

/** The PIDs of the processes that thread `tid` of this process has started. */
export function childrenOf(tid: number): number[] {
  const text = Deno.readTextFileSync(`/proc/self/task/${tid}/children`).trim();
  return text === "" ? [] : text.split(/\s+/).map(Number);
}
