/**
 * The recipe that turns one thread of mini-docker into a container and starts the container's
 * first process from it. Namespaces, the root directory, credentials, capabilities and the
 * seccomp filter are per thread in Linux, and a process that posix_spawn creates from a thread
 * inherits that thread's: so a Deno Worker thread (thread.ts) runs these steps, spawns the
 * command, and is discarded, while the main thread stays in the host's namespaces with its
 * full privileges for the parent's work (start.ts). No Deno process ever runs inside a
 * container: its first process is the command itself (or the small init of `--init`).
 *
 * Everything here is a synchronous call on this thread, in kernel order, one step per line with
 * its reason. Asynchronous Deno APIs would run on other threads, which are still the host's.
 *
 * The first process stops at a gate before its execve (gate.ts): the parent moves it into its
 * cgroup (v2), mounts its /proc (proc.ts), sets its resource limits, and only then lets it run
 * its first instruction.
 */
import {
  type ContainerSpec,
  hostId,
  type LinuxSeccomp,
  type NamespaceType,
  schedAttrBytes,
  unmappedUser,
} from "../base/spec.ts";
import * as libc from "../base/libc.ts";
import { EXIT_CANNOT_INVOKE, EXIT_ENGINE, EXIT_NOT_FOUND } from "../base/errors.ts";
import type { FirstChild, Kernel, ProcessKernel } from "./kernel.ts";
import { trace } from "../base/trace.ts";
import { resolveUser } from "../images/passwd.ts";
import {
  assembleRoot,
  chrootInto,
  containingMountPrivate,
  createDevices,
  hostIdOptions,
  INIT_PATH,
  makeReadonly,
  mask,
  mountId,
  mountInto,
  moveRoot,
  pivot,
  type ProcPeer,
  remountRootReadonly,
} from "./mounts.ts";

/** Capability sets as 64-bit masks (security/capabilities.ts makes them from names). */
export interface CapabilityMasks {
  bounding: bigint;
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  ambient: bigint;
}

/**
 * What the parent tells the container's thread first: enough to make it the container (its
 * namespaces, root and mounts). The thread does that while the parent creates the cgroup.
 */
export interface ThreadConfig {
  /** "create": new namespaces for a new container; "join": enter a running one (`exec`). */
  mode: "create" | "join";
  /**
   * The container's spec. For "join", `process` is the new process and `linux.namespaces`
   * those of the container.
   */
  spec: ContainerSpec;
  /** "join": the host PID of a process of the container, whose namespaces are entered. */
  joinPid?: number;
  /** "join": a user spec (`exec -u NAME[:GROUP]`), resolved in the container's own files. */
  userSpec?: string;
  /** The host directory that becomes the container's /proc ("create"; see mounts.ts). */
  proc: ProcPeer;
  /**
   * The container's cgroup directories (host paths: one per v1 hierarchy, or the v2 one), for
   * a mount of type "cgroup" (OCI bundles): made before this configuration was sent.
   */
  cgroupDirs?: string[];
  /** `-t`: a pseudo-terminal in the container's devpts for the first process. */
  tty: boolean;
  /**
   * Docker's default seccomp profile, for the capabilities of `spec.process`: the thread resolves
   * and compiles it itself (thread.ts), ahead, while it waits for this configuration.
   */
  defaultSeccomp?: boolean;
  /**
   * runc's `--no-pivot` (the OCI runtime): the root moved onto / and entered by chroot, for a
   * root that pivot_root refuses (on an initramfs); the host's procfs and sysfs mounts of the
   * container's mount namespace are detached first, as runc does.
   */
  noPivot?: boolean;
}

/**
 * What the parent tells the container's thread then: how to start the first process. Every
 * descriptor here was opened by the parent, in the host's view (they are the whole process's).
 */
export interface SpawnConfig {
  /**
   * cgroup v1: this thread joins the container's cgroup by itself (writing "0" to each `tasks`
   * file takes no lock and no RCU grace period), so that its first process is born there, and
   * leaves it (writing "0" to `leave`, its own) right after the spawn. It takes one `pids` slot
   * meanwhile: with a pids limit the cgroup is created one above it, and `pidsMax` is written
   * back first.
   *
   * cgroup v2 with a new cgroup namespace (`wholeProcess`): the same writes to `cgroup.procs`
   * files, which move this whole process (see cgroupns.ts): in, the namespace made (rooted
   * there), and out again at once, before the spawn; the parent moves the first process in at
   * its gate, as for any v2 container.
   */
  cgroup?: {
    join: number[];
    leave: number[];
    pidsMax?: { fd: number; limit: number };
    wholeProcess?: boolean;
    /**
     * cgroup v2, a container with a user namespace: the cgroup's directory, where its first
     * process is born (clone3 CLONE_INTO_CGROUP; first_process.ts).
     */
    into?: number;
  };
  /** The gate's directory (an O_PATH descriptor; see gate.ts). */
  gateDir: number;
  /** The first process's 0, 1, 2: this process's, these descriptors, or the new terminal. */
  stdio: "inherit" | "tty" | [number, number, number];
  /** The seccomp filter (compiled by the parent), installed right before the spawn. */
  seccomp?: { program: Uint8Array; flags: number };
  capabilities: CapabilityMasks;
  /** runc's `--no-new-keyring`: the session keyring of the caller is kept. */
  noNewKeyring?: boolean;
  /** runc's `--preserve-fds N`: this process's descriptors 3 .. 3+N-1 are the command's too. */
  preserveFds?: number;
  /**
   * Descriptors of this process that become the command's 3, 4, ... (an OCI createContainer
   * hook's executable, opened in the runtime's namespace). Not with `preserveFds`.
   */
  passFds?: number[];
}

/** What the container's thread tells the parent. */
export type ThreadMessage =
  /** The thread is up (its id names its children in /proc/self/task/TID/children). */
  | { type: "booted"; tid: number }
  /** The thread is the container now, ready for its SpawnConfig (and the default filter it made). */
  | { type: "prepared"; seccomp?: LinuxSeccomp }
  /** `-t`: the terminal's master side (a descriptor of the whole process), before the spawn. */
  | { type: "tty"; master: number }
  /** The first process has called execve: it runs. */
  | { type: "spawned"; pid: number }
  | { type: "failed"; exitCode: number; message: string };

/** A failed step, in the user's terms, with the exit code it deserves. */
export class StepError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT_ENGINE) {
    super(message);
  }
}

/** Runs `fn`; a failure becomes "<what>: <cause>". */
export function step<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Namespaces in the order they are entered, with their flag and /proc/PID/ns name. */
const NAMESPACES: [NamespaceType, number, string][] = [
  ["ipc", libc.CLONE_NEWIPC, "ipc"],
  ["uts", libc.CLONE_NEWUTS, "uts"],
  ["network", libc.CLONE_NEWNET, "net"],
  ["pid", libc.CLONE_NEWPID, "pid"],
  ["cgroup", libc.CLONE_NEWCGROUP, "cgroup"],
  ["mount", libc.CLONE_NEWNS, "mnt"],
];

const CLONE_FS = 0x200;

/** What the first phase leaves for the second. */
export interface Prepared {
  process: ContainerSpec["process"];
  /** The command's executable, found in the container. */
  path: string;
  /** `-t`: the terminal's slave, in the container's devpts. */
  ttySlave?: string;
  /** A new cgroup namespace, made once this thread has joined the container's cgroup. */
  newCgroupNamespace?: boolean;
  /** A user namespace of its own: the first process, born already (first_process.ts). */
  first?: FirstChild;
  /** OCI `linux.personality` (personality(2)'s value). */
  personality?: number;
  /** `exec` in a container with a user namespace: a descriptor of that namespace. */
  joinUser?: number;
}

/**
 * The recipe's first phase: this thread becomes the container (namespaces, root, mounts,
 * hostname, pivot_root), finds the command, and opens the terminal of `-t`.
 */
export function prepareContainer(
  k: Kernel,
  config: ThreadConfig,
  report: (message: ThreadMessage) => void,
  cgroupFd?: number,
): Prepared {
  let first: FirstChild | undefined;
  let joinUser: number | undefined;
  try {
    return { ...prepare(k, config, report, cgroupFd, (c) => first = c, (fd) => joinUser = fd) };
  } catch (err) {
    first?.abandon();
    if (joinUser !== undefined) k.close(joinUser);
    throw err;
  }
}

function prepare(
  k: Kernel,
  config: ThreadConfig,
  report: (message: ThreadMessage) => void,
  cgroupFd: number | undefined,
  born: (first: FirstChild) => void,
  joined: (userFd: number) => void,
): Prepared {
  const { spec } = config;
  // A root, working directory and umask of this thread's own: pivot_root, chdir and setns into
  // a mount namespace below change only this thread.
  step("Cannot unshare the filesystem context", () => k.unshare(CLONE_FS));
  let first: FirstChild | undefined;
  let joinUser: number | undefined;
  if (config.mode === "join") {
    joinUser = joinNamespaces(k, spec, config.joinPid!);
    if (joinUser !== undefined) joined(joinUser);
    // Without a mount namespace of its own, the container's root is a directory of the host's.
    if (!spec.linux.namespaces.some((ns) => ns.type === "mount")) {
      step("Cannot change to the container's root", () => chrootInto(k, spec.root.path));
    }
    // The process's own umask (OCI `process.user.umask`), else 0022 as a first process gets.
    k.umask(spec.process.user.umask ?? 0o022);
  } else {
    first = createNamespaces(k, spec, cgroupFd);
    if (first !== undefined) born(first);
    setSysctls(spec.linux.sysctl ?? {});
    prepareRoot(k, config);
  }
  // The user: `exec -u NAME` is looked up in the container's files, from inside.
  let process = spec.process;
  let home: string | undefined;
  if (config.userSpec !== undefined) {
    const { home: its, ...user } = step(
      `Cannot use user "${config.userSpec}"`,
      () => resolveUser(config.userSpec!, (path) => readInside(`/${path}`)),
    );
    home = its ?? "/";
    process = { ...process, user };
  }
  // A user namespace maps only some ids: the user must be one of them.
  const unmapped = unmappedUser(spec, process.user.uid, process.user.gid);
  if (unmapped !== undefined) throw new StepError(unmapped);
  // HOME, as runc sets it, unless the image or the flags did: the home of the process's user in
  // the container's own /etc/passwd (read from inside, after pivot_root), "/" without an entry.
  if (!process.env.some((e) => e.startsWith("HOME="))) {
    home ??= homeOf(process.user.uid);
    process = { ...process, env: [...process.env, `HOME=${home}`] };
  }
  // The working directory must exist (`run` creates it, as Docker does).
  step(`Cannot use working directory "${process.cwd}"`, () => {
    if (config.mode === "create") Deno.mkdirSync(process.cwd, { recursive: true, mode: 0o755 });
    k.chdir(process.cwd);
  });
  // Found before the spawn, so that "not found" (127) is told from "cannot run" (126); behind
  // `--init`, the command the init will run too.
  const path = process.executable ?? resolveExecutable(process.args[0] ?? "", process.env);
  if (process.args[0] === INIT_PATH && process.args[1] === "--") {
    resolveExecutable(process.args[2] ?? "", process.env);
  }
  // -t: a terminal of the container's own devpts, so that its name resolves inside.
  let ttySlave: string | undefined;
  if (config.tty) {
    const tty = step("Cannot create the terminal", () => k.openPty());
    report({ type: "tty", master: tty.master });
    ttySlave = tty.slave;
    if (spec.linux.uidMappings !== undefined) {
      // Opened by this thread, the host's root, it is the host root's, which the process cannot
      // open in its user namespace: its user's (on the host) instead.
      const uid = hostId(spec.linux.uidMappings, process.user.uid)!;
      step(
        "Cannot give the terminal to the container's user",
        () => Deno.chownSync(ttySlave!, uid, null),
      );
    }
  }
  // With a user namespace the first process was born in the cgroup namespace already.
  const newCgroupNamespace = config.mode === "create" && first === undefined &&
    spec.linux.namespaces.some((ns) => ns.type === "cgroup" && ns.path === undefined);
  return {
    process,
    path,
    ttySlave,
    ...(newCgroupNamespace && { newCgroupNamespace }),
    ...(first !== undefined && { first }),
    ...(spec.linux.personality !== undefined && { personality: spec.linux.personality }),
    ...(joinUser !== undefined && { joinUser }),
  };
}

/**
 * Both phases at once, for a container with a user namespace of its own (first_process.ts):
 * its first process is born first, in its cgroup (v1: this thread's, joined for the clone; v2:
 * CLONE_INTO_CGROUP), so the thread needs the SpawnConfig before it makes the container.
 */
export function startWithUserNamespace(
  k: Kernel,
  config: ThreadConfig,
  spawn: SpawnConfig,
  report: (message: ThreadMessage) => void,
): number {
  const cgroup = spawn.cgroup;
  let prepared: Prepared;
  try {
    for (const fd of cgroup?.join ?? []) {
      step("Cannot join the container's cgroup", () => k.write(fd, "0"));
    }
    prepared = prepareContainer(k, config, report, cgroup?.into);
  } finally {
    if (cgroup !== undefined) leaveCgroup(k, cgroup);
  }
  const first = prepared.first!;
  try {
    return spawnFirst(first.process(), prepared, spawn);
  } finally {
    first.abandon();
  }
}

/**
 * The recipe's second phase: the cgroup (v1), the keyring, capabilities, user, seccomp, and the
 * first process, which stops at its gate. Returns its PID once it has called execve.
 */
export function spawnContainer(k: Kernel, prepared: Prepared, config: SpawnConfig): number {
  const cgroup = config.cgroup;
  let out = false;
  try {
    // cgroup v1: this thread joins the container's cgroup, so its first process is born there
    // (v2, a new cgroup namespace: this whole process, for the namespace only).
    if (cgroup?.wholeProcess) trace("recipe: into the cgroup (the whole process)");
    for (const fd of cgroup?.join ?? []) {
      step("Cannot join the container's cgroup", () => k.write(fd, "0"));
    }
    if (prepared.newCgroupNamespace) {
      // Rooted at the cgroup of this thread, which must be the container's by now.
      if (cgroup === undefined) {
        throw new StepError(
          "A new cgroup namespace needs the container's thread in the container's cgroup (no cgroup files were given)",
        );
      }
      step("Cannot create the cgroup namespace", () => k.unshare(libc.CLONE_NEWCGROUP));
    }
    if (cgroup?.wholeProcess) {
      // v2: out again before anything else; the namespace keeps its root.
      try {
        for (const fd of cgroup.leave) k.write(fd, "0");
        out = true;
      } catch {
        // Kernels before 5.16 check the move against the writer's cgroup namespace (the new
        // one now), not the opener's: the parent moves this process out once the first process
        // is at its gate (cgroupns.ts ensureOut), the cgroup still without limits.
      }
      trace("recipe: out of the cgroup, the cgroup namespace made");
    }
    if (prepared.joinUser !== undefined) {
      // `exec` in a container with a user namespace: a process that enters it by itself.
      const first = step("Cannot start the process", () => k.cloneFirst(0));
      try {
        return spawnFirst(first.process(prepared.joinUser), prepared, config);
      } finally {
        first.abandon();
        k.close(prepared.joinUser);
      }
    }
    return spawnFirst(k, prepared, config);
  } finally {
    // cgroup v1: the pids limit back to the container's own, then out (the first process stays).
    if (cgroup !== undefined && !out) leaveCgroup(k, cgroup);
  }
}

function spawnFirst(k: ProcessKernel, prepared: Prepared, config: SpawnConfig): number {
  const { process, path } = prepared;
  // What the process runs with, set while this thread (or process) is still root: its
  // personality (LINUX32), I/O priority and scheduling policy; a child inherits them. (Its CPUs
  // are set at the gate: a move into a cgroup v2 with cpuset resets them.)
  if (prepared.personality !== undefined) {
    step("Cannot set linux.personality", () => k.personality(prepared.personality!));
  }
  if (process.ioPriority !== undefined) {
    step("Cannot set process.ioPriority", () => k.ioprioSet(process.ioPriority!));
  }
  if (process.scheduler !== undefined) {
    step("Cannot set process.scheduler", () => k.schedSetattr(schedAttrBytes(process.scheduler!)));
  }
  // A session keyring of its own: the host's root keyring is not the container's.
  if (!config.noNewKeyring) step("Cannot create a session keyring", () => k.joinSessionKeyring());
  // Capabilities the container's processes may ever get, then no_new_privs when asked.
  const caps = config.capabilities;
  step("Cannot drop capabilities", () => {
    for (let cap = 0; cap <= 63; cap++) {
      if ((caps.bounding >> BigInt(cap)) & 1n) continue;
      try {
        k.prctl(libc.PR_CAPBSET_DROP, cap);
      } catch (err) {
        // Past the kernel's last capability: nothing to drop.
        if (err instanceof libc.SyscallError && err.errno === libc.EINVAL) break;
        throw err;
      }
    }
  });
  if (process.noNewPrivileges) {
    step("Cannot set no_new_privs", () => k.prctl(libc.PR_SET_NO_NEW_PRIVS, 1));
  }
  // The user, for this thread only: keep the permitted capabilities across the change, so that
  // the filter below can still be installed and the final sets chosen.
  const { uid, gid, additionalGids = [] } = process.user;
  step(`Cannot switch to user ${uid}:${gid}`, () => {
    k.prctl(libc.PR_SET_KEEPCAPS, 1);
    k.setgroups(additionalGids);
    k.setresgid(gid);
    k.setresuid(uid);
  });
  // seccomp as late as possible: installing it takes CAP_SYS_ADMIN (or no_new_privs), and the
  // filter must allow only what remains (capset, the spawn).
  if (config.seccomp !== undefined) {
    const { program, flags } = config.seccomp;
    step("Cannot install the seccomp filter", () => {
      // A new user's effective set is empty: raise it back from the permitted set we kept.
      const held = k.capget();
      if (held.effective !== held.permitted) k.capset({ ...held, effective: held.permitted });
      k.installSeccomp(program, flags);
    });
  }
  step("Cannot set capabilities", () => {
    k.capset({
      effective: caps.effective,
      permitted: caps.permitted,
      inheritable: caps.inheritable,
    });
    for (let cap = 0; cap <= 63; cap++) {
      if ((caps.ambient >> BigInt(cap)) & 1n) {
        k.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, cap);
      }
    }
  });
  trace("recipe: credentials, seccomp");
  // The first process: it waits at the gate, then runs the command with nothing of ours open.
  try {
    return k.spawn(path, process.args, process.env, {
      setsid: prepared.ttySlave !== undefined,
      actions: spawnActions(config, process.cwd, prepared.ttySlave),
    });
  } catch (err) {
    throw execError(err, process.args[0] ?? "");
  }
}

function leaveCgroup(k: Kernel, cgroup: NonNullable<SpawnConfig["cgroup"]>): void {
  try {
    if (cgroup.pidsMax !== undefined) k.write(cgroup.pidsMax.fd, String(cgroup.pidsMax.limit));
    for (const fd of cgroup.leave) k.write(fd, "0");
  } catch {
    // This thread ends right after; it leaves the cgroup with its end.
  }
}

/**
 * New namespaces for this thread (the PID namespace: for its children), or those named by path.
 * With a new user namespace, the new ones are the first process's, born in them, which this
 * thread joins (all but the user and PID ones): returned.
 */
function createNamespaces(
  k: Kernel,
  spec: ContainerSpec,
  cgroupFd: number | undefined,
): FirstChild | undefined {
  const user = spec.linux.namespaces.some((n) => n.type === "user");
  let flags = 0;
  for (const [type, flag] of NAMESPACES) {
    const ns = spec.linux.namespaces.find((n) => n.type === type);
    if (ns === undefined) continue;
    // A new cgroup namespace is rooted at the cgroup of its creator: it is made by
    // spawnContainer, once this thread is in the container's cgroup (with a user namespace: by
    // the clone below, the cgroup joined already).
    if (ns.path === undefined && type === "cgroup" && !user) continue;
    if (ns.path === undefined) {
      flags |= flag;
      continue;
    }
    const fd = step(`Cannot open namespace "${ns.path}"`, () => k.open(ns.path!, libc.O_RDONLY));
    try {
      step(`Cannot join the ${type} namespace "${ns.path}"`, () => k.setns(fd, flag));
    } finally {
      k.close(fd);
    }
  }
  if (!user) {
    step("Cannot create namespaces", () => k.unshare(flags));
    return undefined;
  }
  // The child's working directory is this thread's: "/", which pivot_root moves to the new root
  // (a directory of the host's would stay open in it).
  k.chdir("/");
  const first = step(
    "Cannot create the user namespace",
    () => k.cloneFirst(flags | libc.CLONE_NEWUSER, cgroupFd),
  );
  try {
    // Its ids on the host: before it runs anything as a user of its own.
    for (
      const [file, list] of [["uid_map", spec.linux.uidMappings], [
        "gid_map",
        spec.linux.gidMappings,
      ]] as const
    ) {
      const text = (list ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join("");
      step(`Cannot write the user namespace's ${file}`, () => {
        const fd = k.open(`/proc/${first.pid}/${file}`, libc.O_WRONLY);
        try {
          k.write(fd, text);
        } finally {
          k.close(fd);
        }
      });
    }
    const join = flags &
      (libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWIPC | libc.CLONE_NEWNET);
    if (join !== 0) {
      step("Cannot join the container's namespaces", () => k.setns(first.pidfd, join));
    }
  } catch (err) {
    first.abandon();
    throw err;
  }
  return first;
}

/**
 * OCI `linux.sysctl`, written through the host's /proc/sys from this thread: a namespaced
 * parameter (net.*, the IPC ones, the UTS ones; the front end accepts no other) is the one of the
 * writer's namespace, which is the container's now.
 */
function setSysctls(sysctl: Record<string, string>): void {
  for (const [key, value] of Object.entries(sysctl)) {
    step(`Cannot set sysctl ${key}=${value}`, () => {
      Deno.writeTextFileSync(`/proc/sys/${key.replaceAll(".", "/")}`, value);
    });
  }
}

/**
 * Enters the namespaces of a running container's process (`exec`). Its user namespace, which a
 * thread cannot enter, is returned open: the new process enters it (spawnContainer).
 */
function joinNamespaces(k: Kernel, spec: ContainerSpec, pid: number): number | undefined {
  // Every namespace is opened first: once in the container's mount namespace, /proc is its own.
  const fds: [number, number, string][] = [];
  const user = spec.linux.namespaces.some((n) => n.type === "user")
    ? step(`Cannot open /proc/${pid}/ns/user`, () => k.open(`/proc/${pid}/ns/user`, libc.O_RDONLY))
    : undefined;
  try {
    for (const [type, flag, name] of NAMESPACES) {
      if (!spec.linux.namespaces.some((n) => n.type === type)) continue;
      const path = `/proc/${pid}/ns/${name}`;
      fds.push([step(`Cannot open ${path}`, () => k.open(path, libc.O_RDONLY)), flag, type]);
    }
    for (const [fd, flag, type] of fds) {
      step(`Cannot enter the container's ${type} namespace`, () => k.setns(fd, flag));
    }
  } catch (err) {
    if (user !== undefined) k.close(user);
    throw err;
  } finally {
    for (const [fd] of fds) k.close(fd);
  }
  return user;
}

/** The container's file system, from the host's view to its own root. */
function prepareRoot(k: Kernel, config: ThreadConfig): void {
  const { spec } = config;
  const root = spec.root.path;
  // Without a mount namespace of its own (OCI bundles), the container's mounts are made in the
  // host's, below its root, as runc makes them: the root is a private mount there, so that none
  // of them propagates, and it is detached with all of them when the container goes.
  const ownMounts = spec.linux.namespaces.some((ns) => ns.type === "mount");
  // No mount of ours may propagate to the host; host mounts may still reach the container's
  // copy of a host directory it was given (runc's default, rslave), which is how the parent
  // mounts /proc for it on older kernels. A shared root (`linux.rootfsPropagation` shared or
  // rshared, as Kubernetes' Bidirectional propagation asks) keeps the host's peers instead, as
  // runc does: a shared bind then propagates both ways; the mount that holds the root is made
  // private first, so that the root and the container's own mounts never reach the host.
  const sharedRoot = /^r?shared$/.test(spec.linux.rootfsPropagation ?? "");
  if (ownMounts) {
    step(
      "Cannot make / a slave mount",
      () => k.mount("", "/", "", libc.MS_REC | (sharedRoot ? libc.MS_SHARED : libc.MS_SLAVE)),
    );
  }
  if (ownMounts && sharedRoot) {
    step(
      "Cannot make the root's parent mount private",
      () => containingMountPrivate(k, root),
    );
  }
  // Files created below get exactly the modes asked for.
  k.umask(0);
  trace("recipe: namespaces");
  step("Cannot assemble the root filesystem", () => assembleRoot(k, spec));
  if (!ownMounts) {
    step(
      "Cannot make the root a private mount",
      () => k.mount("", root, "", libc.MS_REC | libc.MS_PRIVATE),
    );
  }
  trace("recipe: root assembled");
  const proc = ownMounts ? config.proc : { ...config.proc, direct: true };
  // Every mount's target is opened inside the root by the kernel (mounts.ts, openInRoot).
  const rootFd = step(
    "Cannot open the root filesystem",
    () => k.openat2(libc.AT_FDCWD, root, libc.O_PATH | libc.O_DIRECTORY, 0),
  );
  // Without a writable layer the root is the base root filesystem itself: the user's mount
  // points are not created in it (the standard ones, and the /etc files, are as before).
  const keep = spec.rootLayers !== undefined && spec.rootLayers.upper === undefined
    ? { mountId: mountId(rootFd) }
    : undefined;
  const users = new Set(spec.mountPoints?.map((p) => p.Destination));
  try {
    for (const m of spec.mounts) {
      step(
        `Cannot mount ${m.type} on "${m.destination}"`,
        () =>
          mountInto(
            k,
            rootFd,
            hostIdOptions(m, spec),
            proc,
            users.has(m.destination) ? keep : undefined,
            config.cgroupDirs,
          ),
      );
    }
  } finally {
    k.close(rootFd);
  }
  step("Cannot create devices", () => createDevices(k, spec));
  if (spec.linux.namespaces.some((ns) => ns.type === "network" && ns.path === undefined)) {
    step("Cannot bring up the loopback interface", () => k.interfaceUp("lo"));
  }
  // "" (an OCI bundle without `hostname`): the name the UTS namespace started with.
  if (spec.hostname !== "") step("Cannot set the hostname", () => k.sethostname(spec.hostname));
  if (spec.domainname !== undefined) {
    step("Cannot set the domain name", () => k.setdomainname(spec.domainname!));
  }
  // pivot_root, not chroot: the old root is detached, so there is no way back to the host.
  trace("recipe: mounts, devices, hostname");
  if (!ownMounts) step("Cannot change to the new root", () => chrootInto(k, root));
  else if (config.noPivot) step("Cannot move the new root onto /", () => moveRoot(k, root));
  else step("Cannot pivot to the new root", () => pivot(k, root));
  trace("recipe: pivoted");
  // Hide what the kernel should not show a container, once the paths are the container's. /proc
  // is still empty here: the parent hides its paths when it mounts it (start.ts), unless this
  // thread mounted it.
  const here = (path: string) => proc.direct === true || !path.startsWith("/proc/");
  for (const path of spec.linux.maskedPaths.filter(here)) {
    step(`Cannot mask "${path}"`, () => mask(k, path));
  }
  for (const path of spec.linux.readonlyPaths.filter(here)) {
    step(`Cannot make "${path}" read-only`, () => makeReadonly(k, path));
  }
  if (spec.root.readonly) step("Cannot make / read-only", () => remountRootReadonly(k));
  k.umask(spec.process.user.umask ?? 0o022);
}

/**
 * What posix_spawn does in the first process before its execve: its 0, 1 and 2; then, with
 * every other descriptor closed, the gate (see gate.ts): arrive, wait to be released, check that
 * mini-docker released it; then its working directory and, with -t, its controlling terminal.
 */
export function spawnActions(
  config: Pick<SpawnConfig, "stdio" | "gateDir" | "preserveFds" | "passFds">,
  cwd: string,
  ttySlave?: string,
): libc.FileAction[] {
  const actions: libc.FileAction[] = [];
  if (Array.isArray(config.stdio)) {
    config.stdio.forEach((fd, target) => actions.push({ dup2: [fd, target] }));
  } else if (config.stdio === "tty") {
    // Until its terminal is opened after the gate, nothing of ours: a caller that reads our
    // output to its end (containerd's shim reads the OCI runtime's) is not held by it.
    actions.push({ open: [0, "/dev/null", libc.O_RDWR] }, { dup2: [0, 1] }, { dup2: [0, 2] });
  }
  // --preserve-fds: 3 .. 3+N-1 kept (open across execve); the gate's descriptors above them.
  const pass = config.passFds ??
    Array.from({ length: config.preserveFds ?? 0 }, (_, i) => 3 + i);
  const g = 3 + pass.length;
  pass.forEach((fd, i) => actions.push({ dup2: [fd, 3 + i] }));
  actions.push(
    { dup2: [config.gateDir, g] },
    { closefrom: g + 1 },
    { fchdir: g },
    { open: [g + 1, "here", libc.O_WRONLY] },
    { open: [g + 2, "gate", libc.O_RDONLY] },
    { open: [g + 3, "check", libc.O_WRONLY | libc.O_NONBLOCK] },
    { closefrom: g },
    { chdir: cwd },
  );
  if (ttySlave !== undefined) {
    // Opened without O_NOCTTY by a new session's leader: it becomes the controlling terminal.
    actions.push({ open: [0, ttySlave, libc.O_RDWR] }, { dup2: [0, 1] }, { dup2: [0, 2] });
  }
  return actions;
}

/** The home directory of user `uid` in the container's /etc/passwd, or "/" (Docker's fallback). */
function homeOf(uid: number): string {
  try {
    return resolveUser(String(uid), (path) => readInside(`/${path}`)).home ?? "/";
  } catch {
    return "/";
  }
}

/** A file of the container, read from this thread (whose root is the container's). */
function readInside(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** execve's failure in Docker's terms: 127 when the file is missing, 126 when it cannot run. */
function execError(err: unknown, name: string): StepError {
  if (err instanceof StepError) return err;
  const code = err instanceof libc.SyscallError ? err.errno : 0;
  if (code === ENXIO) {
    return new StepError("The container's start was cancelled before its command ran");
  }
  const reason = err instanceof libc.SyscallError
    ? `exec: "${name}": ${libc.strerror(code).toLowerCase()}`
    : String(err);
  return new StepError(reason, code === libc.ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_INVOKE);
}

const ENXIO = 6;

/** execvp's search, done before the spawn so that "not found" can be told from "cannot run". */
export function resolveExecutable(name: string, env: readonly string[]): string {
  if (name === "") throw new StepError("No command given", EXIT_ENGINE);
  if (name.includes("/")) return name;
  const pathVar = env.find((e) => e.startsWith("PATH="))?.slice(5) ??
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const dir of pathVar.split(":")) {
    const candidate = `${dir === "" ? "." : dir}/${name}`;
    try {
      const st = Deno.statSync(candidate);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new StepError(`exec: "${name}": executable file not found in $PATH`, EXIT_NOT_FOUND);
}
