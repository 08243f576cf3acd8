/**
 * Starting a container, the parent's side: everything that needs the host's view and full
 * privileges stays on this (the main) thread, and the container's thread (recipe.ts) does the
 * rest. In order:
 *
 * 1. state, the network (ports, address, a namespace that the driver connects meanwhile:
 *    network/mod.ts), the container's /etc files, the cgroup (with its limits and device
 *    rules), the gate, and for a foreground run the watcher — while the container's thread
 *    boots;
 * 2. the seccomp filter compiled, the thread configured: it makes itself the container and
 *    spawns the first process, which stops at the gate;
 * 3. at the gate: cgroup v2 moves the process in (v1: it was born in), /proc is mounted for it
 *    on kernels before 6.18, its network is connected, its resource limits are set; then it is
 *    released and runs.
 *
 * Each kernel step has one home: the cgroup join is `cgroupPlan` (v1, by the thread) or
 * `moveIntoCgroup` (v2); /proc is proc.ts; limits are `setRlimits`.
 */
import { trace, tracing } from "../base/trace.ts";
import { type ContainerNetwork, type ContainerSpec, cpuMask, hostId } from "../base/spec.ts";
import { lazy } from "../base/lazy.ts";
import * as libc from "../base/libc.ts";
import { EXIT_ENGINE, EXIT_FAILURE, UserError } from "../base/errors.ts";
import { exists, runRoot } from "../base/paths.ts";
import { type Cgroup, cgroupAt } from "../cgroups/manager.ts";
import { capabilityMask } from "../security/capabilities.ts";
import {
  type ContainerConfig,
  type ContainerState,
  createState,
  isAlive,
  processRef,
  readState,
  removeState,
  stateDir,
  updateState,
  withLock,
  writeState,
} from "./state.ts";
import { timestamp } from "../base/time.ts";
import type { CapabilityMasks, SpawnConfig } from "./recipe.ts";
import { ContainerThread } from "./threads.ts";
import { childExit, forgetChild } from "./children.ts";
import { readUntilEnd } from "./poller.ts";
import { childrenOf, Gate } from "./gate.ts";
import { startWatcher, type Watcher } from "./watcher.ts";
import { fillProc, prepareProc, releaseProc, removeProcDir, startOrderThread } from "./proc.ts";
import { type ProcPeer, releaseHostRoot } from "./mounts.ts";
import { CgroupnsWindow, exclusive, ownCgroup, procsFileOf, quiet } from "./cgroupns.ts";
import { type EtcNetwork, hostsFile, resolvConf } from "../network/etc.ts";
import type { Attachment } from "../network/mod.ts";

type Networks = typeof import("../network/mod.ts");

/**
 * The network module (network/mod.ts), loaded on first use (a run with `--network host` or
 * `none` never loads it), with the way its driver starts programs: `runProgram`.
 */
export async function networks(): Promise<Networks> {
  const loaded = await lazy<Networks>("../network/mod.ts", import.meta.url);
  loaded.setRunner(runProgram);
  return loaded;
}

/**
 * Runs a program to its end as mini-docker starts every process (posix_spawn, reaped by the one
 * reaper of children.ts): `stdin` as its input, its output collected.
 */
export async function runProgram(
  path: string,
  args: readonly string[],
  options: { env: readonly string[]; stdin: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const input = libc.pipe();
  const out = libc.pipe();
  const err = libc.pipe();
  let pid: number;
  try {
    // Never while mini-docker is in a container's cgroup (cgroupns.ts).
    await quiet();
    pid = libc.spawn(path, [path.slice(path.lastIndexOf("/") + 1), ...args], options.env, {
      actions: [
        { dup2: [input[0], 0] },
        { dup2: [out[1], 1] },
        { dup2: [err[1], 2] },
        { closefrom: 3 },
      ],
    });
  } catch (e) {
    for (const fd of [...input, ...out, ...err]) libc.close(fd);
    throw new UserError(`Cannot run ${path}: ${(e as Error).message}`);
  } finally {
    for (const fd of [input[0], out[1], err[1]]) libc.close(fd);
  }
  const status = childExit(pid);
  const chunks: [Uint8Array[], Uint8Array[]] = [[], []];
  const read = [out[0], err[0]].map((fd, i) =>
    readUntilEnd(fd, (chunk) => chunks[i]!.push(chunk)).finally(() => libc.close(fd))
  );
  try {
    libc.writeAll(input[1], new TextEncoder().encode(options.stdin));
  } catch { /* it did not read its input: its status says why */ }
  libc.close(input[1]);
  const [end] = await Promise.all([status, ...read]);
  const text = (parts: Uint8Array[]) => new TextDecoder().decode(concat(parts));
  return { code: end.code, stdout: text(chunks[0]), stderr: text(chunks[1]) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Who the container is, beyond its spec. */
export interface ContainerMeta {
  id: string;
  name?: string;
  /** Image id ("sha256:...") and the reference the user gave, when run from an image. */
  image?: string;
  imageRef?: string;
  rootfs?: string;
  /** The command as users see it (without --init's init); default: the spec's args. */
  command?: string[];
  /** Docker's Config of the container (what flags and image asked for). */
  config?: ContainerConfig;
}

/** How a container is attached to the process that starts it. */
export interface StartOptions {
  /** The first process's 0, 1 and 2: this process's, these descriptors, or a new terminal. */
  stdio: "inherit" | "tty" | [number, number, number];
  /** Receives the terminal's master (`-t`) before the container's command starts. */
  onPty?: (master: number) => void;
  /** Kill the container when this process dies (foreground runs): see watcher.ts. */
  dieWithParent: boolean;
  /** Remove the container's directory when it exits. */
  autoRemove: boolean;
  detached: boolean;
  /** A container thread started early (its boot overlaps the caller's work). */
  thread?: ContainerThread;
  /** Called with the first process's PID before it runs (signal forwarding must be ready). */
  onSpawn?: (pid: number) => void;
  /**
   * The container gets Docker's default seccomp profile, resolved for its capabilities here,
   * while its thread does its first phase (the spec has no `linux.seccomp` yet): reading and
   * resolving Docker's profile takes about 3 ms that the thread need not wait for.
   */
  defaultSeccomp?: boolean;
  /**
   * The container exists already (`create`, or it ran before: `start`, `restart`, a restart
   * policy): its state is taken over instead of created, and a failed start records its error
   * there instead of removing it.
   */
  existing?: boolean;
  /**
   * The spec is an OCI bundle's, run as given (the OCI runtime, runtime/): no /etc files or
   * network of mini-docker's, and the cgroup wherever `linux.cgroupsPath` says.
   */
  oci?: boolean;
  /** runc's create options (the OCI runtime): see ThreadConfig and SpawnConfig. */
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /**
   * The OCI runtime's `create`: the first process is left waiting at its gate, made in this
   * directory (in its cgroup, with its /proc and limits), and the start returns; `start`, another
   * process, releases it (gate.ts `releaseHeld`). The state says "created".
   */
  holdAt?: string;
}

/** A container whose command is running. */
export interface Started {
  state: ContainerState;
  /** The container's PID 1 (host PID). */
  pid: number;
  /** Its end, as a wait status. */
  status: Promise<Deno.CommandStatus>;
  cgroup: Cgroup;
  /** The host directory behind its /proc, removed once it has ended (proc.ts removeProcDir). */
  proc: ProcPeer;
  /** Waits for the container to exit, records it, cleans up; returns the final state. */
  finish(hooks?: FinishHooks): Promise<ContainerState>;
}

/** What the owner of a container may do at its end. */
export interface FinishHooks {
  /** Called with the cgroup just before it is removed (end-of-run reports). */
  beforeCleanup?: (cgroup: Cgroup, state: ContainerState) => void;
}

/**
 * Creates a container (or, with `existing`, takes over one that exists) and starts its command.
 * On failure everything created so far is removed and a UserError (125, or 126/127 for the
 * command) is thrown.
 */
export async function startContainer(
  spec: ContainerSpec,
  meta: ContainerMeta,
  options: StartOptions,
): Promise<Started> {
  if (!options.existing) return await launch(spec, meta, options);
  // A container that exists already keeps its directory when a start fails: the failure is
  // recorded in its state, and it is released.
  let claimed: ContainerState;
  try {
    claimed = claimState(meta.id);
  } catch (err) {
    options.thread?.end();
    throw err;
  }
  try {
    return await launch(spec, meta, options, claimed);
  } catch (err) {
    options.thread?.end();
    recordFailure(meta.id, err);
    throw err;
  }
}

async function launch(
  spec: ContainerSpec,
  meta: ContainerMeta,
  options: StartOptions,
  claimed?: ContainerState,
): Promise<Started> {
  const thread = options.thread ?? ContainerThread.start();
  await using cleanup = new AsyncDisposableStack();
  cleanup.defer(() => thread.end());

  // What the container's thread needs to become the container: its state directory (with the
  // /etc files it mounts) and its /proc peer directory. It starts on them at once.
  trace("start");
  const state0 = claimed ?? createState({
    ...stateOf(spec, meta, options.autoRemove, options.detached),
    owner: processRef(),
  });
  if (claimed === undefined) cleanup.defer(() => removeState(meta.id));
  const dir = stateDir(meta.id);
  // The container's root mount point and writable layer live in its directory.
  for (const d of [spec.root.path, spec.rootLayers?.upper, spec.rootLayers?.work]) {
    if (d !== undefined) Deno.mkdirSync(d, { recursive: true, mode: 0o755 });
  }
  // Its network: ports bound, an address, a namespace of its own that the thread joins and the
  // driver connects meanwhile (awaited at the gate).
  let attachment: Attachment | undefined;
  if (ownNetwork(spec.network)) {
    attachment = (await networks()).attach(
      { id: meta.id, name: state0.name, hostname: spec.hostname },
      spec.network,
    );
    const attached = attachment;
    cleanup.defer(() => attached.release().then(() => {}));
    spec = {
      ...spec,
      linux: {
        ...spec.linux,
        namespaces: spec.linux.namespaces.map((ns) =>
          ns.type === "network" ? { type: "network", path: attached.netns } : ns
        ),
      },
    };
    trace("network attached");
  }
  // The /etc files (a spec saved by an earlier start has them already: they are written anew).
  // An OCI bundle's spec says itself what the container sees. A file that the user mounts
  // (`-v ./hosts:/etc/hosts`) is theirs, as with Docker.
  if (!options.oci) {
    const users = new Set(spec.mountPoints?.map((p) => p.Destination));
    const files = etcFiles(spec, dir, attachment?.etc);
    const etc = files.filter((e) => !users.has(e.destination));
    const others = spec.mounts.filter((m) =>
      users.has(m.destination) || !files.some((e) => e.destination === m.destination)
    );
    spec = { ...spec, mounts: [...others, ...etc] };
  }
  // Without a mount namespace (OCI bundles) the thread's mounts are the host's, below the root.
  const hostRoot = spec;
  cleanup.defer(() => releaseHostRoot(hostRoot));
  const proc = prepareProc(meta.id);
  cleanup.defer(() => {
    releaseProc(proc);
    removeProcDir(proc);
  });
  trace("state, files");

  // The cgroup, with its limits, before any process of the container exists. On v1 the thread
  // joins it and holds one pids slot while it spawns (see SpawnConfig.cgroup). It is made while
  // the thread prepares, unless the container mounts it (a "cgroup" mount): then before.
  const { driver, name } = cgroupAt(spec.linux.cgroupsPath);
  const pidsLimit = spec.linux.resources.pids?.limit;
  const slot = driver.version === 1 && pidsLimit !== undefined && pidsLimit > 0;
  // v2 and a new cgroup namespace: mini-docker passes through the cgroup (cgroupns.ts), which
  // gets its limits once it is out again.
  // (With a user namespace the first process is born in the cgroup and its namespace instead:
  // recipe.ts startWithUserNamespace.)
  const userns = spec.linux.namespaces.some((ns) => ns.type === "user");
  const window = driver.version === 2 && !userns &&
    spec.linux.namespaces.some((ns) => ns.type === "cgroup" && ns.path === undefined);
  const makeCgroup = () => {
    const made = driver.create(
      name,
      slot ? { ...spec.linux.resources, pids: { limit: pidsLimit! + 1 } } : spec.linux.resources,
      { deferLimits: window },
    );
    cleanup.defer(() => made.destroy());
    return made;
  };
  const early = spec.mounts.some((m) => m.type === "cgroup") ? makeCgroup() : undefined;
  const defaultSeccomp = options.defaultSeccomp === true && spec.linux.seccomp === undefined;
  const prepared = thread.prepare(
    {
      mode: "create",
      spec,
      proc,
      tty: options.stdio === "tty",
      defaultSeccomp,
      ...(options.noPivot && { noPivot: true }),
      ...(early !== undefined && { cgroupDirs: [...early.paths] }),
    },
    options.onPty,
  );
  prepared.catch(() => {});
  // The OCI runtime's mounts are put in order at the gate (proc.ts): its thread made now.
  const order = options.oci ? startOrderThread() : undefined;
  cleanup.defer(() => order?.terminate());
  const cgroup = early ?? makeCgroup();
  // The thread ends first: on v1 it may be inside the cgroup.
  cleanup.defer(() => thread.end());
  trace("cgroup");
  using gate = Gate.create(options.holdAt);
  const watcher = options.dieWithParent ? startWatcher(gate.dir, cgroup) : undefined;
  cleanup.defer(() => watcher?.[Symbol.dispose]());
  const plan = cgroupPlan(
    cgroup,
    spec.linux.cgroupsPath,
    slot ? pidsLimit : undefined,
    window,
    userns,
  );
  // Held at its gate, the first process is still being spawned when this returns: the thread
  // leaves the cgroup (v1) through these files when its spawn returns, or with this process.
  using _plan = options.holdAt === undefined ? plan : undefined;
  // An explicit filter is compiled here; Docker's default one by the thread (thread.ts).
  const seccomp = defaultSeccomp ? undefined : await compileFilter(spec);
  trace("gate, watcher, seccomp");
  const ready = await prepared;
  if (ready.type === "prepared" && ready.seccomp !== undefined) {
    spec = { ...spec, linux: { ...spec.linux, seccomp: ready.seccomp } };
  }
  // The spec as the container runs it (exec reads it).
  Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(spec, null, 2) + "\n");

  const { pid, status } = await runThread(
    thread,
    prepared,
    {
      cgroup: plan.files,
      gateDir: gate.dirFd,
      stdio: options.stdio,
      seccomp,
      capabilities: capabilityMasks(spec),
      ...(options.noNewKeyring && { noNewKeyring: true }),
      ...(options.preserveFds && { preserveFds: options.preserveFds }),
    },
    {
      gate,
      cgroup,
      spec,
      onSpawn: options.onSpawn,
      hold: options.holdAt !== undefined,
      window: plan.window,
    },
    async (pid) => {
      try {
        await Promise.all([
          fillProc(pid, proc, spec, options.oci === true, order),
          attachment?.ready,
        ]);
      } finally {
        order?.terminate();
      }
      if (spec.process.oomScoreAdj !== undefined) setOomScoreAdj(pid, spec.process.oomScoreAdj);
    },
  );
  if (options.holdAt !== undefined) {
    // The thread is still in its spawn (until the process's execve, after `start`): this
    // process's exit ends it. On v1 it holds the pids slot until then: the limit is set now.
    gate.hold();
    if (slot) cgroup.updatePids(pidsLimit!);
  } else {
    thread.end();
  }
  const state: ContainerState = options.holdAt !== undefined
    ? { ...state0, status: "created", process: processRef(pid), owner: undefined }
    : { ...state0, status: "running", process: processRef(pid), startedAt: timestamp() };
  writeState(state);

  // Started: from here on the cleanup belongs to finish().
  cleanup.move();
  let finished: Promise<ContainerState> | undefined;
  return {
    state,
    pid,
    status,
    cgroup,
    proc,
    finish(hooks = {}) {
      finished ??= finish(state, status, { cgroup, watcher, attachment }, hooks).finally(() => {
        removeProcDir(proc);
        releaseHostRoot(hostRoot);
      });
      return finished;
    },
  };
}

/** What a new container's state records of its spec and meta (createState's fields). */
function stateOf(spec: ContainerSpec, meta: ContainerMeta, autoRemove: boolean, detached: boolean) {
  return {
    id: meta.id,
    name: meta.name,
    image: meta.image,
    imageRef: meta.imageRef,
    rootfs: meta.rootfs,
    command: meta.command ?? spec.process.args,
    config: meta.config,
    cgroupsPath: spec.linux.cgroupsPath,
    autoRemove,
    detached,
  };
}

/**
 * `create`: a container's state and spec, nothing started. Docker's default seccomp profile is
 * resolved now (a start of it later reads its config.json as is). It has no owner: `start`
 * takes it over (supervisor.ts).
 */
export async function createContainer(
  spec: ContainerSpec,
  meta: ContainerMeta,
  options: { autoRemove: boolean; defaultSeccomp?: boolean },
): Promise<ContainerState> {
  if (options.defaultSeccomp && spec.linux.seccomp === undefined) {
    // Docker's default profile resolved for the container's capabilities (a start does this on
    // the container's thread; here nothing waits for it).
    const p = await import("../security/seccomp_profile.ts");
    const capabilities = spec.process.capabilities?.bounding ?? [];
    const seccomp = p.resolveSeccomp(p.defaultSeccompProfile(), { capabilities });
    spec = { ...spec, linux: { ...spec.linux, seccomp } };
  }
  const state = createState(stateOf(spec, meta, options.autoRemove, true));
  try {
    Deno.writeTextFileSync(
      `${stateDir(meta.id)}/config.json`,
      JSON.stringify(spec, null, 2) + "\n",
    );
  } catch (err) {
    removeState(meta.id);
    throw err;
  }
  return state;
}

/**
 * Waits for the thread's first phase, gives it the SpawnConfig, and walks the first process
 * through its gate: v2 moves it into the cgroup, `atGate` does the caller's part, its resource
 * limits are set, and it is released. Returns once it has called execve. A failure kills it and
 * throws.
 */
export async function runThread(
  thread: ContainerThread,
  prepared: Promise<{ type: "prepared" } | { type: "failed"; message: string; exitCode: number }>,
  config: SpawnConfig,
  at: {
    gate: Gate;
    cgroup: Cgroup;
    spec: ContainerSpec;
    onSpawn?: (pid: number) => void;
    /**
     * Leave it at the gate (the OCI runtime's `create`): returns once it is ready to go. Not
     * reaped, as with `reap: false`.
     */
    hold?: boolean;
    /** false: not reaped by this process (its status never resolves); default true. */
    reap?: boolean;
    /**
     * v2, a new cgroup namespace: the thread passes this process through the cgroup to make
     * it (cgroupns.ts); checked closed once the thread has spawned or failed, then the cgroup
     * gets its limits before the first process moves in.
     */
    window?: CgroupnsWindow;
  },
  atGate: (pid: number) => Promise<void> = () => Promise.resolve(),
): Promise<{ pid: number; status: Promise<Deno.CommandStatus> }> {
  const { gate, cgroup, spec } = at;
  const tid = await thread.booted;
  const ready = await prepared;
  if (ready.type === "failed") throw failure(ready);
  trace("thread prepared");
  // No other start's spawn meanwhile, nor a window of another container (cgroupns.ts).
  const done = await exclusive();
  const { window } = at;
  const outcome = thread.spawn(config);
  // Until the first process has arrived at the gate, the thread may fail instead.
  const arrived = gate.arrival().then(() => undefined);
  let first: Awaited<typeof outcome> | undefined;
  try {
    first = await Promise.race([arrived, outcome]);
  } finally {
    try {
      // The thread left by itself; a thread stopped between its two writes did not.
      window?.ensureOut();
    } finally {
      done();
    }
  }
  if (window !== undefined && tracing()) {
    trace(`cgroupns window: ${cgroupCharge(cgroup)} bytes left charged to the cgroup`);
  }
  if (first !== undefined) {
    gate.cancel();
    await arrived.catch(() => {});
    throw failure(first.type === "failed" ? first : {});
  }
  trace("at the gate");
  const pid = childrenOf(tid)[0];
  if (pid === undefined) throw new UserError("The container's first process vanished at its gate");
  // A process handed over to our caller (the OCI runtime's create and detached exec) is not
  // reaped here: its exit status is for the subreaper it is reparented to when we exit.
  const reap = !at.hold && at.reap !== false;
  const status = reap ? childExit(pid) : new Promise<Deno.CommandStatus>(() => {});
  let reapedBySpawn = false;
  try {
    // v2 and a new cgroup namespace: the limits now, with mini-docker out (cgroupns.ts).
    if (window !== undefined) applyLimits(cgroup, spec);
    if (cgroup.threadFiles === undefined) await moveIntoCgroup(cgroup, pid);
    await atGate(pid);
    setRlimits(pid, spec.process.rlimits ?? [], hostUser(spec));
    if (spec.process.cpuAffinity !== undefined) setCpuAffinity(pid, spec.process.cpuAffinity);
    trace("cgroup, /proc, limits");
    at.onSpawn?.(pid);
    if (at.hold) return { pid, status };
    const released = gate.release();
    // The thread reports once posix_spawn has returned: the command runs (or could not).
    const result = await outcome;
    if (result.type === "failed") {
      // The child reported its failure (execve's errno) and posix_spawn reaped it.
      reapedBySpawn = true;
      gate.cancel();
      await released.catch(() => {});
      throw failure(result);
    }
    await released;
    trace("released, running");
  } catch (err) {
    if (reapedBySpawn) {
      forgetChild(pid);
    } else {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
      await (reap ? status : childExit(pid));
      // The thread reports once it has left the cgroup (v1), which may be removed next.
      await outcome;
    }
    throw err;
  }
  return { pid, status };
}

/**
 * OCI `process.execCPUAffinity`, set at the gate, once the process is in its cgroup: a move into
 * a cgroup v2 with the cpuset controller resets a process's CPUs (runc's "final" affinity).
 */
function setCpuAffinity(pid: number, cpus: readonly number[]): void {
  try {
    libc.schedSetaffinity(pid, cpuMask(cpus));
  } catch (err) {
    throw new UserError(
      `Cannot set process.execCPUAffinity to CPUs ${cpus.join(",")}: ${(err as Error).message}`,
    );
  }
}

/** The process's user as the host sees it (its user namespace's maps). */
function hostUser(spec: ContainerSpec): { uid: number; gid: number } {
  const { uid, gid } = spec.process.user;
  return {
    uid: hostId(spec.linux.uidMappings, uid) ?? uid,
    gid: hostId(spec.linux.gidMappings, gid) ?? gid,
  };
}

/** The limits that a cgroup made with `deferLimits` gets once its first process is in. */
function applyLimits(cgroup: Cgroup, spec: ContainerSpec): void {
  try {
    cgroup.update(spec.linux.resources);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`Cannot set the container's limits: ${(err as Error).message}`);
  }
}

/** What the container's memory cgroup holds (v2 `memory.current`), for the trace. */
function cgroupCharge(cgroup: Cgroup): string {
  try {
    return String(cgroup.stats().memoryUsage ?? "?");
  } catch {
    return "?";
  }
}

function failure(outcome: { exitCode?: number; message?: string }): UserError {
  return new UserError(outcome.message ?? "The container's thread failed", outcome.exitCode);
}

/**
 * cgroup v1: descriptors of the files the container's thread writes to join the cgroup (each
 * hierarchy's `tasks`), to leave it again (those of this process's own cgroups), and of its
 * pids limit; opened here, in the host's view. cgroup v2 has nothing of the kind for a domain
 * cgroup: no files (the parent moves the first process at the gate). Dispose of it after the
 * spawn.
 */
export function cgroupPlan(
  cgroup: Cgroup,
  cgroupsPath: string,
  pidsLimit?: number,
  window = false,
  bornInside = false,
): { files?: SpawnConfig["cgroup"]; window?: CgroupnsWindow } & Disposable {
  const fds: number[] = [];
  const open = (path: string) => {
    const fd = libc.open(path, libc.O_WRONLY | libc.O_CLOEXEC);
    fds.push(fd);
    return fd;
  };
  const dispose = () => fds.forEach((fd) => libc.close(fd));
  if (cgroup.threadFiles === undefined && window) {
    // v2, a new cgroup namespace: the whole process in and out (cgroupns.ts).
    try {
      const own = ownCgroup();
      const leave = open(procsFileOf(own));
      return {
        files: { join: [open(cgroup.procsFiles[0]!)], leave: [leave], wholeProcess: true },
        window: new CgroupnsWindow(leave, own),
        [Symbol.dispose]: dispose,
      };
    } catch (err) {
      dispose();
      throw new UserError(`Cannot open the container's cgroup: ${(err as Error).message}`);
    }
  }
  if (cgroup.threadFiles === undefined && bornInside) {
    // v2, a user namespace: the first process is born in the cgroup (clone3 CLONE_INTO_CGROUP).
    try {
      const into = libc.open(cgroup.paths[0]!, libc.O_RDONLY | libc.O_DIRECTORY | libc.O_CLOEXEC);
      fds.push(into);
      return { files: { join: [], leave: [], into }, [Symbol.dispose]: dispose };
    } catch (err) {
      dispose();
      throw new UserError(`Cannot open the container's cgroup: ${(err as Error).message}`);
    }
  }
  if (cgroup.threadFiles === undefined) return { [Symbol.dispose]: dispose };
  try {
    const own = Deno.readTextFileSync("/proc/self/cgroup").split("\n");
    const leave = cgroup.threadFiles.map((file) => {
      // <mount>/<cgroupsPath>/tasks -> <mount><this process's own cgroup>/tasks
      const mount = file.slice(0, file.length - `/${cgroupsPath}/tasks`.length);
      const controllers = mount.slice(mount.lastIndexOf("/") + 1);
      const line = own.find((l) => l.split(":")[1] === controllers);
      const path = line?.slice(line.indexOf(":", line.indexOf(":") + 1) + 1) ?? "/";
      return `${mount}${path === "/" ? "" : path}/tasks`;
    });
    const pidsDir = cgroup.paths.find((p) => exists(`${p}/pids.max`));
    return {
      files: {
        join: cgroup.threadFiles.map(open),
        leave: leave.map(open),
        pidsMax: pidsLimit === undefined || pidsDir === undefined
          ? undefined
          : { fd: open(`${pidsDir}/pids.max`), limit: pidsLimit },
      },
      [Symbol.dispose]: dispose,
    };
  } catch (err) {
    dispose();
    throw new UserError(`Cannot open the container's cgroup: ${(err as Error).message}`);
  }
}

/**
 * cgroup v2: moves the first process into the cgroup while it waits at the gate (v2 moves whole
 * processes only, and glibc 2.36's posix_spawn cannot start one inside a cgroup). The kernel
 * waits for an RCU grace period for it.
 */
async function moveIntoCgroup(cgroup: Cgroup, pid: number): Promise<void> {
  const data = new TextEncoder().encode(String(pid));
  try {
    await Promise.all(cgroup.procsFiles.map(async (path) => {
      using file = await Deno.open(path, { write: true });
      await file.write(data);
    }));
  } catch (err) {
    throw new UserError(`Cannot move the container into its cgroup: ${(err as Error).message}`);
  }
}

/**
 * The process's resource limits, set while it waits at the gate. prlimit(2) on another process
 * takes CAP_SYS_RESOURCE, which mini-docker may not have, or real ids equal to the target's: for
 * a non-root user this thread borrows them (its effective ids stay root) for the calls.
 */
export function setRlimits(
  pid: number,
  rlimits: readonly { type: string; soft: number; hard: number }[],
  user: { uid: number; gid: number },
): void {
  if (rlimits.length === 0) return;
  const borrow = user.uid !== 0 || user.gid !== 0;
  if (borrow) {
    libc.setresgid(user.gid, -1, -1);
    libc.setresuid(user.uid, -1, -1);
  }
  try {
    for (const r of rlimits) {
      const resource = libc.RLIMITS[r.type]!;
      const value = (n: number) => n < 0 ? libc.RLIM_INFINITY : BigInt(n);
      try {
        libc.prlimit(pid, resource, value(r.soft), value(r.hard));
      } catch (err) {
        const hard = libc.getrlimit(0, resource).hard;
        throw new UserError(
          `Cannot set ${r.type} to ${r.soft}:${r.hard}: ${(err as Error).message}${
            value(r.hard) > hard
              ? ` (the hard limit cannot be raised above mini-docker's own, ${hard}, without CAP_SYS_RESOURCE)`
              : ""
          }`,
        );
      }
    }
  } finally {
    if (borrow) {
      libc.setresuid(0, -1, -1);
      libc.setresgid(0, -1, -1);
    }
  }
}

/**
 * OCI `process.oomScoreAdj`, set while the process waits at its gate (lowering it below the
 * current value takes CAP_SYS_RESOURCE).
 */
function setOomScoreAdj(pid: number, value: number): void {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/oom_score_adj`, String(value));
  } catch (err) {
    throw new UserError(`Cannot set process.oomScoreAdj to ${value}: ${(err as Error).message}`);
  }
}

/** The capability sets of the spec as masks (none at all when the spec has none). */
export function capabilityMasks(spec: ContainerSpec): CapabilityMasks {
  const c = spec.process.capabilities;
  return {
    bounding: capabilityMask(c?.bounding ?? []),
    effective: capabilityMask(c?.effective ?? []),
    permitted: capabilityMask(c?.permitted ?? []),
    inheritable: capabilityMask(c?.inheritable ?? []),
    ambient: capabilityMask(c?.ambient ?? []),
  };
}

/** The spec's seccomp filter compiled for this machine (libseccomp), or undefined. */
export async function compileFilter(
  spec: ContainerSpec,
): Promise<SpawnConfig["seccomp"]> {
  if (spec.linux.seccomp === undefined) return undefined;
  const { compileSeccomp } = await import("../security/seccomp.ts");
  // libseccomp takes 15-25 ms over Docker's profile; a program it made before costs 0.2 ms.
  const cacheDir = `${runRoot()}/seccomp`;
  Deno.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  return compileSeccomp(spec.linux.seccomp, { cacheDir });
}

/** Whether the container has a network of mini-docker's (not the host's, not `none`). */
function ownNetwork(network: ContainerNetwork | undefined): network is ContainerNetwork {
  return network !== undefined && network.mode !== "host" && network.mode !== "none";
}

async function finish(
  started: ContainerState,
  status: Promise<Deno.CommandStatus>,
  owned: { cgroup: Cgroup; watcher?: Watcher; attachment?: Attachment },
  hooks: FinishHooks,
): Promise<ContainerState> {
  const { cgroup, watcher, attachment } = owned;
  const end = await status;
  trace("container exited");
  let oomKills = 0;
  try {
    oomKills = cgroup.oomKills() ?? 0;
  } catch { /* the counters are gone: report none */ }
  const current = readState(started.id) ?? started;
  const state: ContainerState = {
    ...current,
    status: "exited",
    exitCode: end.code,
    // Any OOM kill in the cgroup counts, as Docker's OOMKilled: the victim may be a child of
    // PID 1 (a shell then exits 137 itself). A plain `kill -9` leaves the counter at 0.
    oomKilled: oomKills > 0,
    paused: false,
    finishedAt: timestamp(),
  };
  try {
    // Under the store's lock: `rm -f` may be removing the container at this moment, and a state
    // written into a directory being removed would bring it back.
    withLock(() => {
      if (readState(started.id) !== undefined) writeState(state);
    });
  } catch { /* removed meanwhile (rm -f) */ }
  hooks.beforeCleanup?.(cgroup, state);
  // The cgroup and the network go in any case (a stopped container holds no address, as in
  // Docker); the directory (state, log, layer) only with auto-remove.
  const [, problem] = await Promise.all([
    cgroup.destroy(),
    attachment?.release().finally(() => trace("network released")),
  ]);
  if (problem !== undefined) {
    console.error(`mini-docker: container ${state.name}: network teardown: ${problem}`);
  }
  watcher?.[Symbol.dispose]();
  if (state.autoRemove) {
    removeState(state.id);
  } else {
    // Its cgroup and network are gone: nobody is responsible for it any more (`start` may take
    // it over from here).
    releaseOwner(state.id);
  }
  trace("cleaned up");
  return { ...state, owner: undefined };
}

/** Clears the owner of a container this process owned (under the store's lock). */
export function releaseOwner(id: string): void {
  try {
    withLock(() => {
      const now = readState(id);
      if (now !== undefined && now.owner?.pid === Deno.pid) {
        writeState({ ...now, owner: undefined });
      }
    });
  } catch { /* removed meanwhile */ }
}

/**
 * Takes over an existing container for a start: it must not run, and no other live process may
 * be responsible for it (a previous owner still cleaning up is waited for by the caller).
 */
function claimState(id: string): ContainerState {
  return withLock(() => {
    const state = readState(id);
    if (state === undefined) throw new UserError(`No such container: ${id}`, EXIT_FAILURE);
    if (state.status === "running") {
      throw new UserError(`Container ${state.name} is already running`, EXIT_FAILURE);
    }
    if (state.owner !== undefined && state.owner.pid !== Deno.pid && isAlive(state.owner)) {
      throw new UserError(
        `Container ${state.name} is still being cleaned up by process ${state.owner.pid}: try again`,
        EXIT_FAILURE,
      );
    }
    const claimed: ContainerState = {
      ...state,
      owner: processRef(),
      paused: false,
      killedBy: undefined,
      manuallyStopped: false,
      error: undefined,
    };
    writeState(claimed);
    return claimed;
  });
}

/**
 * Records why a start of an existing container failed (Docker's State.Error and exit code) and
 * releases it; a container that never ran stays "created".
 */
function recordFailure(id: string, err: unknown): void {
  try {
    updateState(id, (s) => ({
      ...s,
      status: s.status === "created" ? "created" : "exited",
      exitCode: err instanceof UserError ? err.exitCode : EXIT_ENGINE,
      error: err instanceof Error ? err.message : String(err),
      owner: undefined,
      finishedAt: s.status === "created" ? s.finishedAt : timestamp(),
    }));
  } catch { /* removed meanwhile */ }
}

/** The files under the state directory that the container sees in /etc. */
function etcFiles(spec: ContainerSpec, dir: string, net?: EtcNetwork): ContainerSpec["mounts"] {
  Deno.writeTextFileSync(`${dir}/hostname`, `${spec.hostname}\n`);
  Deno.writeTextFileSync(`${dir}/hosts`, hostsFile(spec.hostname, spec.network, net));
  Deno.writeTextFileSync(`${dir}/resolv.conf`, resolvConf(hostResolvConf(), spec.network, net));
  // Canonical: the container's thread opens them refusing any symlink (mounts.ts).
  const real = Deno.realPathSync(dir);
  return ["hostname", "hosts", "resolv.conf"].map((name) => ({
    destination: `/etc/${name}`,
    type: "bind",
    source: `${real}/${name}`,
    options: ["bind", "nosuid", "nodev"],
  }));
}

/** The host's resolver configuration; systemd-resolved's stub is replaced by its upstreams. */
export function hostResolvConf(): string {
  const read = (p: string) => {
    try {
      return Deno.readTextFileSync(p);
    } catch {
      return undefined;
    }
  };
  const conf = read("/etc/resolv.conf") ?? "";
  if (/^nameserver\s+127\.0\.0\.53/m.test(conf)) {
    return read("/run/systemd/resolve/resolv.conf") ?? conf;
  }
  return conf;
}
