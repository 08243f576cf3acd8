/**
 * What other commands do to a container: signal it, stop it, remove it, and clean what a
 * killed mini-docker left behind. Everything works from the state on disk, whoever started the
 * container; a PID is only signalled while it is still the recorded process (start time check).
 */
import {
  containersDir,
  type ContainerState,
  isAlive,
  listStates,
  readState,
  removeState,
  stateDir,
  updateState,
  withLock,
} from "./state.ts";
import { UserError } from "../base/errors.ts";
import { signalName } from "../base/signals.ts";
import { cgroupDriver } from "../cgroups/manager.ts";
import { runRoot } from "../base/paths.ts";
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

/** Sends signal `sig` (a number) to the container's PID 1. */
export function signalContainer(state: ContainerState, sig: number): void {
  if (!isRunning(state)) {
    throw new UserError(`Container ${state.name} (${state.id.slice(0, 12)}) is not running`);
  }
  if (sig === 9 || sig === 15 || sig === 2 || sig === 1) {
    // Remember it: if nobody observes the exit, its code is still 128+sig.
    updateState(state.id, (s) => ({ ...s, killedBy: sig }));
  }
  try {
    Deno.kill(state.process!.pid, signalName(sig) ?? "SIGKILL");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Waits until the container has exited (or is gone); false on timeout. */
export async function waitExited(id: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = readState(id);
    if (s === undefined || s.status === "exited") return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** SIGTERM, then SIGKILL after `timeoutSec` (Docker's stop). */
export async function stopContainer(state: ContainerState, timeoutSec: number): Promise<void> {
  if (!isRunning(state)) return;
  signalContainer(state, 15);
  if (await waitExited(state.id, timeoutSec * 1000)) return;
  const now = readState(state.id);
  if (now !== undefined && isRunning(now)) signalContainer(now, 9);
  if (!(await waitExited(state.id, 10_000))) {
    throw new UserError(`Container ${state.id.slice(0, 12)} did not exit after SIGKILL`);
  }
}

/** Removes a container: refused while it runs unless `force` (then it is killed first). */
export async function removeContainer(state: ContainerState, force: boolean): Promise<void> {
  if (isRunning(state)) {
    if (!force) {
      throw new UserError(
        `You cannot remove a running container ${
          state.id.slice(0, 12)
        }: stop it first, or use "rm -f"`,
      );
    }
    signalContainer(state, 9);
    if (!(await waitExited(state.id, 10_000))) {
      throw new UserError(`Container ${state.id.slice(0, 12)} did not exit after SIGKILL`);
    }
  }
  await Promise.all([destroyCgroup(state), releaseNetwork(state.id)]);
  withLock(() => removeState(state.id));
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
 * Cleans what killed mini-docker processes left: containers whose waiter and process are gone
 * (their cgroup is destroyed, their network released; foreground and --rm ones are removed),
 * networks and cgroups with no container, and sync sockets. Returns the ids of the containers
 * removed.
 */
export async function cleanupStale(): Promise<string[]> {
  const removed: string[] = [];
  const states = listStates(); // Reconciles: dead containers are "exited" from here on.
  // Networks whose container has ended with nobody to release them, or is gone entirely.
  if (networkRecordsExist()) {
    const byId = new Map(states.map((s) => [s.id, s]));
    await (await networks()).releaseGone((id) => {
      const s = byId.get(id);
      return s === undefined ? !stateExists(id) : s.status === "exited" && !isAlive(s.owner);
    });
  }
  for (const s of states) {
    if (s.status !== "exited" || isAlive(s.owner)) continue;
    await destroyCgroup(s);
    if (s.autoRemove) {
      withLock(() => removeState(s.id));
      removed.push(s.id);
    }
  }
  // cgroups whose container is gone entirely (a half-created one, or removed by hand). Not a
  // fresh one: another run may have made it a moment ago and be about to fill it.
  const known = new Set(listStates().map((s) => s.cgroupsPath.split("/").pop()));
  const driver = cgroupDriver();
  for (const name of driver.list()) {
    if (known.has(name)) continue;
    const cgroup = driver.open(name);
    if (cgroup === undefined || cgroup.pids().length > 0 || ageMs(cgroup.paths[0]!) < 60_000) {
      continue;
    }
    await cgroup.destroy();
  }
  // Directories without a state.json older than a minute: an interrupted create.
  try {
    for (const e of Deno.readDirSync(containersDir())) {
      const dir = stateDir(e.name);
      try {
        Deno.statSync(`${dir}/state.json`);
      } catch {
        if (ageMs(dir) > 60_000) Deno.removeSync(dir, { recursive: true });
      }
    }
  } catch { /* no containers dir */ }
  removeStaleRunFiles();
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

/** Milliseconds since `path` was last modified (0 when it is gone). */
function ageMs(path: string): number {
  try {
    return Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
  } catch {
    return 0;
  }
}

/**
 * What killed starts left in the run root: gates (gate.ts) and /proc peer directories
 * (start.ts), which may still be mounted on the host's side. Only those over a minute old: a
 * start in progress owns the others.
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
      const path = `${runRoot()}/${kind}/${e.name}`;
      if (ageMs(path) < 60_000) continue;
      if (kind === "proc") releaseProc({ root: path, dir: `${path}/proc` });
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* still in use */ }
    }
  }
}
