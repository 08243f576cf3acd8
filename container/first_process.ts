/**
 * A container's first process when it has a user namespace of its own (OCI `linux.uidMappings`).
 *
 * The usual first process is posix_spawn'ed by the container's thread once the thread is the
 * container (recipe.ts). A thread of a multi-threaded process cannot enter a user namespace, so
 * here the process comes first: clone3 makes it, from the thread, in a new user namespace and
 * the container's other new namespaces at once (so those belong to the user namespace, and its
 * root may use them), and it waits (base/clone.ts). The thread writes its id maps, joins its
 * namespaces but the user one, and makes the container's root there exactly as for any
 * container (as the host's root: mounts, devices, pivot_root, which moves the waiting process's
 * root too). What the thread would then do to itself before posix_spawn — keyring, bounding set,
 * user, seccomp, capabilities, the spawn's file actions and execve — becomes the process's own
 * list of system calls: `ScriptedProcess` is that part of the Kernel interface, recorded instead
 * of called, so the recipe's second phase (recipe.ts spawnFirst) is the same code for both.
 *
 * `exec` in such a container clones a process in the thread's (the container's) namespaces whose
 * first step is setns into the container's user namespace: a single-threaded process may.
 */
import * as libc from "../base/libc.ts";
import { Data, NR, type Script, ScriptedChild } from "../base/clone.ts";
import type { FirstChild, ProcessKernel } from "./kernel.ts";
import { StepError } from "./recipe.ts";

/** clone3 from this thread, for the kernel seam (kernel.ts `linux.cloneFirst`). */
export function cloneFirst(flags: number, cgroupFd?: number): FirstChild {
  const child = ScriptedChild.clone(flags, cgroupFd);
  return {
    pid: child.pid,
    pidfd: child.pidfd,
    process: (joinUser) => new ScriptedProcess(child, joinUser),
    abandon: () => child.abandon(),
  };
}

const F_GETFD = 1;
const F_SETFD = 2;
const AT_FDCWD = -100;
const SIGKILL = 9;
const SIGSTOP = 19;

/** The steps of the first process, as ops of its list (see the top of this file). */
class ScriptedProcess implements ProcessKernel {
  readonly #child: ScriptedChild;
  readonly #s: Script;
  /** Ops before the spawn report to the child's end of the report pipe. */
  readonly #err: number;
  /** The capabilities this kernel knows (those of this thread, the host's root). */
  readonly #all: bigint;

  constructor(child: ScriptedChild, joinUser?: number) {
    this.#child = child;
    this.#s = child.script;
    this.#err = child.errfd;
    this.#all = libc.capget().permitted;
    if (joinUser !== undefined) {
      this.#op("setns (the container's user namespace)", NR.setns, joinUser, libc.CLONE_NEWUSER);
    }
  }

  #op(label: string, nr: number, ...args: (number | bigint | Data)[]): void {
    this.#s.op(label, this.#err, nr, ...args);
  }

  personality(persona: number): void {
    this.#op(`personality(${persona})`, NR.personality, persona);
  }

  ioprioSet(value: number): void {
    this.#op(`ioprio_set(${value})`, NR.ioprio_set, 1, 0, value);
  }

  schedSetattr(attr: Uint8Array<ArrayBuffer>): void {
    this.#op("sched_setattr", NR.sched_setattr, 0, this.#s.bytes(attr), 0);
  }

  joinSessionKeyring(): void {
    this.#op("keyctl (a session keyring)", NR.keyctl, 1, 0);
  }

  prctl(option: number, arg2: number | bigint, arg3: number | bigint = 0): void {
    // Past the kernel's last capability there is nothing to drop: as the kernel would say.
    if (option === libc.PR_CAPBSET_DROP && (this.#all >> BigInt(arg2)) === 0n) {
      throw new libc.SyscallError("prctl", libc.EINVAL);
    }
    this.#op(`prctl(${option}, ${arg2})`, NR.prctl, option, arg2, arg3, 0, 0);
  }

  setgroups(gids: readonly number[]): void {
    const list = new Uint8Array(new Uint32Array(gids.length === 0 ? [0] : gids).buffer);
    this.#op(`setgroups(${gids.join(",")})`, NR.setgroups, gids.length, this.#s.bytes(list));
  }

  setresgid(gid: number): void {
    this.#op(`setresgid(${gid})`, NR.setresgid, gid, gid, gid);
  }

  setresuid(uid: number): void {
    this.#op(`setresuid(${uid})`, NR.setresuid, uid, uid, uid);
  }

  /**
   * What the process holds when its ops reach this point: every capability permitted in its
   * user namespace (a new one gives them all; PR_SET_KEEPCAPS keeps them across the change of
   * user), and none effective, as after a change to a non-root user (capset below raises them
   * either way).
   */
  capget(): libc.CapSets {
    return { effective: 0n, permitted: this.#all, inheritable: 0n };
  }

  capset(caps: libc.CapSets): void {
    const [header, data] = libc.capsetArguments(caps);
    const bytes = (a: Uint32Array<ArrayBuffer>) => this.#s.bytes(new Uint8Array(a.buffer));
    this.#op("capset", NR.capset, bytes(header), bytes(data));
  }

  installSeccomp(program: Uint8Array, flags: number): void {
    const filter = this.#s.bytes(program);
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    const fprog = this.#s.u64s([program.length / 8, filter]);
    this.#op("seccomp (install the filter)", NR.seccomp, 1, /* SET_MODE_FILTER */ flags, fprog);
  }

  /**
   * posix_spawn's work as ops: a new session or group, every signal's default action, the file
   * actions, the signal mask cleared, execve. Then the process runs them all: returns its PID
   * once it has called execve. The report pipe moves above every descriptor the actions name, so
   * that none of them closes or replaces it.
   */
  spawn(
    path: string,
    argv: readonly string[],
    env: readonly string[],
    options: libc.SpawnOptions,
  ): number {
    const s = this.#s;
    const actions = options.actions ?? [];
    const named = actions.flatMap((a) =>
      "dup2" in a
        ? a.dup2
        : "open" in a
        ? [a.open[0]]
        : "close" in a
        ? [a.close]
        : "fchdir" in a
        ? [a.fchdir]
        : []
    );
    const report = Math.max(this.#err, 2, ...named) + 1;
    const errOp = (label: string, nr: number, ...args: (number | bigint | Data)[]) =>
      s.op(label, report, nr, ...args);
    s.op("exec", this.#err, NR.dup3, this.#err, report, libc.O_CLOEXEC);
    if (options.setsid) errOp("exec", NR.setsid);
    if (options.setpgroup) errOp("exec", NR.setpgid, 0, 0);
    // struct kernel_sigaction { handler = SIG_DFL, flags, restorer, mask }: all zero.
    const dfl = s.bytes(new Uint8Array(32));
    for (let sig = 1; sig <= 64; sig++) {
      if (sig !== SIGKILL && sig !== SIGSTOP) s.op("exec", -1, NR.rt_sigaction, sig, dfl, 0, 8);
    }
    for (const a of actions) {
      if ("dup2" in a) {
        const [from, to] = a.dup2;
        if (from === to) errOp("exec", NR.fcntl, from, F_SETFD, 0);
        else errOp("exec", NR.dup3, from, to, 0);
      } else if ("open" in a) {
        // open(2) takes the lowest free descriptor: the one asked for, once it is closed, when
        // every one below is open (checked, so that a failure is not a descriptor misplaced).
        const [fd, file, flags] = a.open;
        s.op("exec", -1, NR.close, fd);
        for (let below = 0; below < fd; below++) errOp("exec", NR.fcntl, below, F_GETFD);
        errOp("exec", NR.openat, AT_FDCWD, s.str(file), flags, 0);
      } else if ("close" in a) {
        s.op("exec", -1, NR.close, a.close);
      } else if ("closefrom" in a) {
        if (a.closefrom < report) errOp("exec", NR.close_range, a.closefrom, report - 1, 0);
        errOp("exec", NR.close_range, Math.max(a.closefrom, report + 1), 0xffffffff, 0);
      } else if ("chdir" in a) {
        errOp("exec", NR.chdir, s.str(a.chdir));
      } else {
        errOp("exec", NR.fchdir, a.fchdir);
      }
    }
    errOp("exec", NR.rt_sigprocmask, 2, /* SIG_SETMASK */ s.bytes(new Uint8Array(8)), 0, 8);
    errOp("exec", NR.execve, s.str(path), s.strings(argv), s.strings(env));
    try {
      this.#child.run();
    } catch (err) {
      if (!(err instanceof libc.SyscallError)) throw err;
      // A file action or execve: as posix_spawn reports them (recipe.ts execError).
      if (err.call === "exec") throw new libc.SyscallError("exec", err.errno, path);
      throw new StepError(`The container's first process failed at ${err.message}`);
    }
    return this.#child.pid;
  }
}
