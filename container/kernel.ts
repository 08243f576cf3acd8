/**
 * The kernel as the recipe sees it: every privileged call that turns a thread into a container
 * goes through this interface, so that the recipe's order and arguments can be checked against
 * a recording fake (recipe_test.ts) as well as by real containers. `linux` is the real one.
 * File-system reads and mkdirs are not part of it: the recipe does those for real, and tests
 * give it a temporary directory.
 */
import * as libc from "../base/libc.ts";
import { installSeccomp } from "../security/seccomp_load.ts";

/** What the recipe's second phase does to the process it starts (before it, for posix_spawn). */
export type ProcessKernel = Pick<
  Kernel,
  | "personality"
  | "ioprioSet"
  | "schedSetattr"
  | "joinSessionKeyring"
  | "prctl"
  | "setgroups"
  | "setresgid"
  | "setresuid"
  | "capget"
  | "capset"
  | "installSeccomp"
  | "spawn"
>;

/**
 * A first process born before the container (a user namespace of its own: first_process.ts),
 * waiting for its second phase.
 */
export interface FirstChild {
  pid: number;
  /** A pidfd of it, to join its namespaces. */
  pidfd: number;
  /** Its second phase: calls recorded as its own steps, run by `spawn`. */
  process(joinUser?: number): ProcessKernel;
  /** Kills and reaps it (the container's start failed before `spawn`). */
  abandon(): void;
}

export interface Kernel {
  unshare(flags: number): void;
  setns(fd: number, nstype: number): void;
  open(path: string, flags: number): number;
  close(fd: number): void;
  /** Writes `text` to an open file (a cgroup's `tasks`). */
  write(fd: number, text: string): void;
  mount(source: string, target: string, fstype: string, flags: number, data?: string): void;
  /** openat2(2): `path` resolved from `dirfd` under `resolve`'s rules (O_CLOEXEC added). */
  openat2(dirfd: number, path: string, flags: number, resolve: number): number;
  /** A detached bind of what `fd` refers to (open_tree). */
  openTree(fd: number, recursive: boolean): number;
  /** mount_setattr(2) on the mount `fd` refers to. */
  mountSetattr(
    fd: number,
    attrs: { set: number; clear: number; propagation: number },
    recursive: boolean,
  ): void;
  /** move_mount(2): the detached mount `from` attached on what `to` refers to. */
  moveMount(from: number, to: number): void;
  /** A read-only (or otherwise restricted) copy of `path` mounted on itself in one step. */
  bindWithAttributes(path: string, attrs: number): void;
  umount2(target: string, flags: number): void;
  pivotRoot(newRoot: string, putOld: string): void;
  chdir(path: string): void;
  chroot(path: string): void;
  umask(mask: number): number;
  sethostname(name: string): void;
  setdomainname(name: string): void;
  personality(persona: number): void;
  ioprioSet(value: number): void;
  schedSetattr(attr: Uint8Array<ArrayBuffer>): void;
  mknod(path: string, mode: number, dev: number): void;
  interfaceUp(name: string): void;
  prctl(option: number, arg2: number | bigint, arg3?: number | bigint): void;
  capget(): libc.CapSets;
  capset(caps: libc.CapSets): void;
  setgroups(gids: readonly number[]): void;
  setresgid(gid: number): void;
  setresuid(uid: number): void;
  joinSessionKeyring(): void;
  installSeccomp(program: Uint8Array, flags: number): void;
  openPty(): { master: number; slave: string };
  spawn(
    path: string,
    argv: readonly string[],
    env: readonly string[],
    options: libc.SpawnOptions,
  ): number;
  /** clone3: a process in new namespaces (`flags`, a user namespace among them) that waits. */
  cloneFirst(flags: number, cgroupFd?: number): FirstChild;
}

/**
 * The real kernel, through base/libc.ts. `cloneFirst` is first_process.ts's, which the thread
 * loads only for a container with a user namespace (thread.ts `withFirstProcess`).
 */
export const linux: Kernel = {
  unshare: libc.unshare,
  setns: libc.setns,
  open: (path, flags) => libc.open(path, flags),
  close: libc.close,
  write: (fd, text) => libc.writeAll(fd, new TextEncoder().encode(text)),
  mount: libc.mount,
  openat2: libc.openat2,
  openTree: libc.openTree,
  mountSetattr: libc.mountSetattr,
  moveMount: libc.moveMount,
  bindWithAttributes: libc.bindWithAttributes,
  umount2: libc.umount2,
  pivotRoot: libc.pivotRoot,
  chdir: libc.chdir,
  chroot: libc.chroot,
  umask: libc.umask,
  sethostname: libc.sethostname,
  setdomainname: libc.setdomainname,
  personality: libc.personality,
  ioprioSet: libc.ioprioSet,
  schedSetattr: libc.schedSetattr,
  mknod: libc.mknod,
  interfaceUp: libc.interfaceUp,
  prctl: libc.prctl,
  capget: libc.capget,
  capset: libc.capset,
  setgroups: libc.setgroups,
  setresgid: (gid) => libc.setresgid(gid),
  setresuid: (uid) => libc.setresuid(uid),
  joinSessionKeyring: libc.joinSessionKeyring,
  installSeccomp,
  openPty: libc.openPty,
  spawn: libc.spawn,
  cloneFirst: () => {
    throw new Error("first_process.ts is not loaded (thread.ts withFirstProcess)");
  },
};
