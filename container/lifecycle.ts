/**
 * What other commands do to a container: signal it, stop it, pause it, remove it, and clean what
 * a killed mini-docker left behind. Everything works from the state on disk, whoever started the
 * container; a PID is only signalled while it is still the recorded process (start time check),
 * and what a process left is cleaned once that process is gone, never on a guess from age.
 */
import {
  checkName as checkContainerName,
  type ContainerState,
  isAlive,
  listStates,
  matchContainer,
  readState,
  removeStaleEntries,
  removeState,
  stateDir,
  tagAlive,
  updateState,
  volumeLiveness,
  volumesExist,
  withLock,
  writeState,
} from "./state.ts";
import { removeStaleVolumeEntries } from "../volumes/store.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import * as libc from "../base/libc.ts";
import { cgroupDriver } from "../cgroups/manager.ts";
import type { Cgroup } from "../cgroups/manager.ts";
import { runRoot } from "../base/paths.ts";
import { timestamp } from "../base/time.ts";
import { releaseProc } from "./proc.ts";
import { networks } from "./start.ts";

/**
 * Whether any container may hold a network (network/endpoints.ts keeps its records here): the
 * network module is loaded only then.
 */
function networkRecordsExist(): boolean {
  try {
    for (const e of Deno.readDirSync(`${runRoot()}/networks/endpoints`)) {
      if (!e.name.startsWith("keeper-")) return true;
    }
  } catch { /* none */ }
  return false;
}

/** Releases the network of a container that has ended (its address, rules, namespace). */
async function releaseNetwork(id: string): Promise<void> {
  if (!networkRecordsExist()) return;
  const problem = await (await networks()).release(id);
  if (problem !== undefined) {
    console.error(`mini-docker: container ${id.slice(0, 12)}: network teardown: ${problem}`);
  }
}

/** Whether the container's PID 1 is alive. */
export function isRunning(state: ContainerState): boolean {
  return state.status === "running" && isAlive(state.process);
}

/** The signals that end a container on purpose: its restart policy then leaves it stopped. */
const STOPPING = new Set([1, 2, 9, 15]);

/** "Container NAME (ID) is not running", Docker's exit code 1. */
function notRunning(state: ContainerState): UserError {
  return new UserError(
    `Container ${state.name} (${state.id.slice(0, 12)}) is not running`,
    EXIT_FAILURE,
  );
}

/**
 * Sends signal `sig` (a number, real-time ones included) to the container's PID 1. A paused
 * container keeps a signal pending until it is unpaused, except SIGKILL, which thaws it.
 */
export async function signalContainer(state: ContainerState, sig: number): Promise<void> {
  if (!isRunning(state)) throw notRunning(state);
  if (STOPPING.has(sig)) {
    // Remember it: if nobody observes the exit, its code is still 128+sig; and a restart
    // policy does not start it again (Docker's "manually stopped").
    updateState(state.id, (s) => ({ ...s, killedBy: sig, manuallyStopped: true }));
  }
  try {
    libc.kill(state.process!.pid, sig);
  } catch (err) {
    if ((err as libc.SyscallError).errno !== libc.ESRCH) throw err;
  }
  if (sig === 9 && state.paused) await thaw(state);
}

/** Waits until the container has exited (or is gone); false on timeout. */
export async function waitExited(id: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = readState(id);
    if (s === undefined || s.status === "exited" || s.status === "created") return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Waits until no live process is responsible for the container any more: it has exited and its
 * owner has released its cgroup and network (start.ts finish). False on timeout.
 */
export async function waitReleased(id: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = readState(id);
    if (s === undefined) return true;
    const ended = s.status === "exited" || s.status === "created";
    if (ended && (s.owner === undefined || !isAlive(s.owner))) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * SIGTERM, then SIGKILL after `timeoutSec` (Docker's stop). A paused container is thawed first
 * (so that it can act on SIGTERM); a restarting one is left stopped.
 */
export async function stopContainer(state: ContainerState, timeoutSec: number): Promise<void> {
  if (state.status === "restarting") {
    updateState(
      state.id,
      (s) =>
        s.status === "restarting"
          ? { ...s, status: "exited", manuallyStopped: true, finishedAt: timestamp() }
          : { ...s, manuallyStopped: true },
    );
  }
  if (!isRunning(state)) return;
  if (state.paused) await thaw(state);
  await signalContainer({ ...state, paused: false }, 15);
  if (await waitExited(state.id, timeoutSec * 1000)) return;
  const now = readState(state.id);
  if (now !== undefined && isRunning(now)) await signalContainer(now, 9);
  if (!(await waitExited(state.id, 10_000))) {
    throw new UserError(`Container ${state.id.slice(0, 12)} did not exit after SIGKILL`);
  }
}

/** The cgroup of a running container. */
function openCgroup(state: ContainerState): Cgroup {
  const cgroup = cgroupDriver().open(state.cgroupsPath.split("/").pop()!);
  if (cgroup === undefined) {
    throw new UserError(`Container ${state.id.slice(0, 12)} has no cgroup`, EXIT_FAILURE);
  }
  return cgroup;
}

/** Freezes every process of a running container (Docker's pause). */
export async function pauseContainer(state: ContainerState): Promise<void> {
  if (!isRunning(state)) throw notRunning(state);
  if (state.paused) {
    throw new UserError(`Container ${state.name} is already paused`, EXIT_FAILURE);
  }
  await openCgroup(state).freeze();
  updateState(state.id, (s) => ({ ...s, paused: true }));
}

/** Thaws a paused container (Docker's unpause). */
export async function unpauseContainer(state: ContainerState): Promise<void> {
  if (!isRunning(state)) throw notRunning(state);
  if (!state.paused) {
    throw new UserError(`Container ${state.name} is not paused`, EXIT_FAILURE);
  }
  await thaw(state);
}

async function thaw(state: ContainerState): Promise<void> {
  await openCgroup(state).thaw();
  updateState(state.id, (s) => ({ ...s, paused: false }));
}

/**
 * Removes a container: refused while it runs (or waits to restart) unless `force`; then it is
 * killed first, and its restart policy does not start it again.
 */
export async function removeContainer(
  state: ContainerState,
  force: boolean,
  anonymousVolumes = false,
): Promise<void> {
  const running = isRunning(state);
  if (running || state.status === "restarting") {
    const what = running ? (state.paused ? "paused" : "running") : "restarting";
    if (!force) {
      throw new UserError(
        `You cannot remove a ${what} container ${
          state.id.slice(0, 12)
        }: stop it first, or use "rm -f"`,
        EXIT_FAILURE,
      );
    }
    if (running) {
      await signalContainer(state, 9);
    } else {
      updateState(state.id, (s) => ({ ...s, status: "exited", manuallyStopped: true }));
    }
    if (!(await waitExited(state.id, 10_000))) {
      throw new UserError(`Container ${state.id.slice(0, 12)} did not exit after SIGKILL`);
    }
  }
  await Promise.all([destroyCgroup(state), releaseNetwork(state.id)]);
  withLock(() => removeState(state.id, anonymousVolumes));
}

async function destroyCgroup(state: ContainerState): Promise<void> {
  const name = state.cgroupsPath.split("/").pop()!;
  const cgroup = cgroupDriver().open(name);
  try {
    await cgroup?.destroy();
  } catch (err) {
    // The owner may be removing it at the same moment.
    if (cgroupDriver().open(name) !== undefined) throw err;
  }
}

/**
 * Cleans what killed mini-docker processes left: containers whose owner and process are gone
 * (their cgroup is destroyed, their network released; foreground and --rm ones are removed),
 * cgroups with no container, interrupted creates and removals, and the run files (gates, /proc
 * directories, supervisor files) of processes that are gone. Liveness is read from each owner
 * (its PID and start time, or a lock it holds): a live run is never touched, and nothing dead
 * waits for a timer. Returns the ids of the containers removed.
 */
export async function cleanupStale(): Promise<string[]> {
  const removed: string[] = [];
  // The cgroups first: a container's state is written before its cgroup is made, and its cgroup
  // destroyed before its state goes, so a cgroup listed here without a state read after it has
  // no container.
  const driver = cgroupDriver();
  const cgroups = driver.list();
  const states = listStates(); // Reconciles: dead containers are "exited" from here on.
  // Networks whose container has ended with nobody to release them, or is gone entirely. Read
  // afresh for each record: a container that a restart has just taken over (its owner set before
  // its new record is written) is not gone.
  if (networkRecordsExist()) {
    await (await networks()).releaseGone((id) => {
      const s = readState(id);
      return s === undefined ? !stateExists(id) : s.status === "exited" && !isAlive(s.owner);
    });
  }
  for (const s of states) {
    // An owner that died before releasing the container: its cleanup is done here.
    if (s.status !== "exited" || s.owner === undefined || isAlive(s.owner)) continue;
    await destroyCgroup(s);
    if (s.autoRemove) {
      withLock(() => removeState(s.id));
      removed.push(s.id);
    } else {
      withLock(() => {
        const now = readState(s.id);
        if (now !== undefined && now.owner?.pid === s.owner?.pid) {
          writeState({ ...now, owner: undefined });
        }
      });
    }
  }
  // cgroups whose container is gone entirely (removed by hand): those nothing runs in.
  const known = new Set(states.map((s) => s.cgroupsPath.split("/").pop()));
  for (const name of cgroups) {
    if (known.has(name)) continue;
    const cgroup = driver.open(name);
    if (cgroup === undefined || cgroup.pids().length > 0) continue;
    await cgroup.destroy();
  }
  removeStaleEntries();
  if (volumesExist()) removeStaleVolumeEntries(volumeLiveness);
  removeStaleRunFiles();
  removeStaleSupervisorFiles();
  return removed;
}

/** Whether a container's directory exists (a container being created has one before its state). */
function stateExists(id: string): boolean {
  try {
    Deno.statSync(stateDir(id));
    return true;
  } catch {
    return false;
  }
}

/**
 * What killed starts left in the run root: gates (gate.ts) and /proc peer directories
 * (proc.ts), which may still be mounted on the host's side. Both are named after the process
 * that made them; only those of a process that is gone are removed.
 */
function removeStaleRunFiles(): void {
  for (const kind of ["gates", "proc"]) {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(`${runRoot()}/${kind}`)];
    } catch {
      continue;
    }
    for (const e of entries) {
      if (tagAlive(e.name)) continue;
      const path = `${runRoot()}/${kind}/${e.name}`;
      if (kind === "proc") releaseProc({ root: path, dir: `${path}/proc` });
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* still in use */ }
    }
  }
}

/**
 * The files of supervisors that are gone (a killed one, an old build's): `<build>.sock`,
 * `.pid` and `.lock`. A live supervisor holds a lock on its `.lock` file for its whole life:
 * a lock that can be taken has no supervisor. The files are removed while holding it, and a
 * supervisor that locked the file meanwhile finds it unlinked and makes a new one (supervisor.ts).
 */
export function removeStaleSupervisorFiles(): void {
  const dir = `${runRoot()}/supervisor`;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.name.endsWith(".lock")) continue;
    const build = e.name.slice(0, -".lock".length);
    let fd: number;
    try {
      fd = libc.open(`${dir}/${e.name}`, libc.O_RDWR | libc.O_CLOEXEC);
    } catch {
      continue; // removed meanwhile
    }
    try {
      if (!libc.tryLock(fd)) continue; // its supervisor lives
      for (const suffix of [".sock", ".pid", ".lock"]) {
        try {
          Deno.removeSync(`${dir}/${build}${suffix}`);
        } catch { /* not there */ }
      }
    } finally {
      libc.close(fd);
    }
  }
}

/**
 * Renames a container (Docker's rules for the name), and a running one's name in the DNS of its
 * networks too.
 */
export async function renameContainer(ref: string, name: string): Promise<void> {
  checkContainerName(name, EXIT_FAILURE);
  const { state, old } = withLock(() => {
    const states = listStates();
    const state = matchContainer(ref, states);
    if (state.name === name) {
      throw new UserError(
        `Renaming a container with the same name as its current name: "${name}"`,
        EXIT_FAILURE,
      );
    }
    const holder = states.find((s) => s.name === name);
    if (holder !== undefined) {
      throw new UserError(
        `Conflict: the container name "${name}" is already in use by container "${
          holder.id.slice(0, 12)
        }": remove that container or choose another name`,
        EXIT_FAILURE,
      );
    }
    writeState({ ...state, name });
    return { state, old: state.name };
  });
  if (isRunning(state) && networkRecordsExist()) {
    let hostname = "";
    try {
      hostname = JSON.parse(Deno.readTextFileSync(`${stateDir(state.id)}/config.json`)).hostname;
    } catch { /* no spec: no host name alias */ }
    await (await networks()).renameMember(state.id, old, name, hostname);
  }
}
