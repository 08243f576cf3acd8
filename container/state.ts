/**
 * Containers on disk. Each container has a directory `<data root>/containers/<id>` holding
 * `state.json` (written atomically: temp file + rename), `config.json` (its spec), its log, the
 * files it sees as /etc/hostname, /etc/hosts and /etc/resolv.conf, and its writable layer.
 * Name allocation and removal happen under one lock file in the run root, so two mini-docker
 * commands at once never take the same name or half-remove a container.
 *
 * Nobody has to be alive for the state to stay true: every reader reconciles a "running"
 * container whose process is gone (its supervisor was killed, or the host rebooted).
 */
import { dataRoot, runRoot } from "../base/paths.ts";
import { UserError } from "../base/errors.ts";

export type ContainerStatus = "created" | "running" | "exited";

/** A process, identified across PID reuse by its start time (field 22 of /proc/PID/stat). */
export interface ProcessRef {
  pid: number;
  startTime: number;
}

/** What `state.json` holds. */
export interface ContainerState {
  id: string;
  name: string;
  status: ContainerStatus;
  /** The container's PID 1 (host PID) while it runs. */
  process?: ProcessRef;
  /** The mini-docker process that waits for the container (foreground run or supervisor). */
  owner?: ProcessRef;
  /** ISO 8601 times. */
  created: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  oomKilled?: boolean;
  /** Image id ("sha256:...") when the root comes from an image. */
  image?: string;
  /** What the user named as the root: an image reference or a rootfs directory. */
  imageRef?: string;
  /** The base root filesystem directory, when not from an image. */
  rootfs?: string;
  command: string[];
  /** Relative cgroup path ("mini-docker/<id>"). */
  cgroupsPath: string;
  /** Remove the container when it exits (`--rm`, and every foreground run). */
  autoRemove: boolean;
  /** Started with -d: its output goes to the log file. */
  detached: boolean;
  /** A signal sent by stop/kill, so an exit nobody observed still gets the right code. */
  killedBy?: number;
}

/** Directory holding every container's directory. */
export function containersDir(): string {
  return `${dataRoot()}/containers`;
}

/** A container's directory. */
export function stateDir(id: string): string {
  return `${containersDir()}/${id}`;
}

/** The container's log file (CRI format: "<time> <stream> <F|P> <text>"). */
export function logPath(id: string): string {
  return `${stateDir(id)}/container.log`;
}

/** Runs `fn` holding the exclusive lock of the state store. */
export function withLock<T>(fn: () => T): T {
  Deno.mkdirSync(runRoot(), { recursive: true, mode: 0o700 });
  using file = Deno.openSync(`${runRoot()}/lock`, { create: true, write: true });
  file.lockSync(true);
  try {
    return fn();
  } finally {
    file.unlockSync();
  }
}

/** A random 64-hex-digit container id, as Docker's. */
export function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const ADJECTIVES = [
  "brave",
  "calm",
  "eager",
  "fancy",
  "gentle",
  "happy",
  "jolly",
  "keen",
  "lucid",
  "merry",
  "nifty",
  "proud",
  "quirky",
  "sharp",
  "sleepy",
  "stoic",
  "tender",
  "vibrant",
  "wise",
  "zen",
];
const NAMES = [
  "curie",
  "darwin",
  "euler",
  "fermi",
  "gauss",
  "hopper",
  "kepler",
  "lovelace",
  "noether",
  "pascal",
  "ritchie",
  "shannon",
  "tesla",
  "thompson",
  "torvalds",
  "turing",
  "wozniak",
  "yalow",
];

function randomName(): string {
  const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)}_${pick(NAMES)}`;
}

const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The start time of a process, or undefined when it does not exist. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may contain spaces and parentheses: split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** A reference to a live process (this one by default). */
export function processRef(pid = Deno.pid): ProcessRef {
  return { pid, startTime: processStartTime(pid) ?? 0 };
}

/** Whether the process is still the one recorded (not dead, not a reused PID, not a zombie). */
export function isAlive(ref: ProcessRef | undefined): boolean {
  if (ref === undefined) return false;
  if (processStartTime(ref.pid) !== ref.startTime) return false;
  try {
    const status = Deno.readTextFileSync(`/proc/${ref.pid}/status`);
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/** Reads every container's state; entries being created or removed are skipped. */
export function listStates(): ContainerState[] {
  const out: ContainerState[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(containersDir())];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return out;
    throw err;
  }
  for (const e of entries) {
    const state = readState(e.name);
    if (state !== undefined) out.push(state);
  }
  return out.sort((a, b) => b.created.localeCompare(a.created));
}

/** A container's state, reconciled with the processes that exist, or undefined. */
export function readState(id: string): ContainerState | undefined {
  let state: ContainerState;
  try {
    state = JSON.parse(Deno.readTextFileSync(`${stateDir(id)}/state.json`));
  } catch {
    return undefined;
  }
  return reconcile(state);
}

/**
 * A container recorded as running whose process is gone, and that nobody is waiting for any
 * more, has exited: record it. Its exit status was lost with its waiter; it is 128+N when
 * mini-docker itself killed it with signal N, else 255 (unknown), as Docker reports.
 */
function reconcile(state: ContainerState): ContainerState {
  if (state.status === "exited") return state;
  if (isAlive(state.owner)) return state;
  if (state.status === "running" && isAlive(state.process)) return state;
  if (state.status === "created" && state.process === undefined && isRecent(state.created)) {
    return state; // Still being set up by a process that has not recorded itself yet.
  }
  const exited: ContainerState = {
    ...state,
    status: "exited",
    exitCode: state.killedBy !== undefined ? 128 + state.killedBy : 255,
    finishedAt: state.finishedAt ?? new Date().toISOString(),
  };
  try {
    writeState(exited);
  } catch {
    // Removed meanwhile.
  }
  return exited;
}

function isRecent(iso: string): boolean {
  return Date.now() - Date.parse(iso) < 30_000;
}

/** Writes `state.json` atomically: readers see the old or the new file, never a part. */
export function writeState(state: ContainerState): void {
  const dir = stateDir(state.id);
  const tmp = `${dir}/.state.json.${crypto.randomUUID()}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
  Deno.renameSync(tmp, `${dir}/state.json`);
}

/** Reads, changes and writes a container's state under the lock. */
export function updateState(
  id: string,
  change: (s: ContainerState) => ContainerState,
): ContainerState | undefined {
  return withLock(() => {
    const state = readState(id);
    if (state === undefined) return undefined;
    const next = change(state);
    writeState(next);
    return next;
  });
}

/**
 * Creates a new container's directory and first `state.json`, choosing a unique name (or
 * checking the requested one) under the lock.
 */
export function createState(
  init: Omit<ContainerState, "name" | "status" | "created"> & { name?: string },
): ContainerState {
  if (init.name !== undefined && !NAME_PATTERN.test(init.name)) {
    throw new UserError(
      `Invalid container name "${init.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
    );
  }
  return withLock(() => {
    const states = listStates();
    const taken = new Set(states.map((s) => s.name));
    let name = init.name;
    if (name !== undefined && taken.has(name)) {
      const owner = states.find((s) => s.name === name)!;
      throw new UserError(
        `Conflict: the container name "${name}" is already in use by container "${
          owner.id.slice(0, 12)
        }": remove that container or choose another name`,
      );
    }
    while (name === undefined || taken.has(name)) name = randomName();
    const state: ContainerState = {
      ...init,
      name,
      status: "created",
      created: new Date().toISOString(),
    };
    Deno.mkdirSync(containersDir(), { recursive: true, mode: 0o711 });
    Deno.mkdirSync(stateDir(state.id), { mode: 0o711 });
    writeState(state);
    return state;
  });
}

/** Removes a container's directory (state, config, log, layers). */
export function removeState(id: string): void {
  try {
    Deno.removeSync(stateDir(id), { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Finds a container among `states` by full id, name, or unique id prefix, as Docker does: an
 * exact id or name first. Unknown or ambiguous references are UserErrors (125).
 */
export function matchContainer(ref: string, states: readonly ContainerState[]): ContainerState {
  const exact = states.find((s) => s.id === ref || s.name === ref);
  if (exact !== undefined) return exact;
  const matches = /^[0-9a-f]+$/.test(ref) ? states.filter((s) => s.id.startsWith(ref)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UserError(`Multiple containers match "${ref}": use more of the id or the name`);
  }
  throw new UserError(`No such container: ${ref}`);
}

/** Finds a container on disk by full id, name, or unique id prefix (see matchContainer). */
export function findContainer(ref: string): ContainerState {
  return matchContainer(ref, listStates());
}
