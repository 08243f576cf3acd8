/**
 * Containers on disk. Each container has a directory `<data root>/containers/<id>` holding
 * `state.json` (written atomically: temp file + rename), `config.json` (its spec), its log, the
 * files it sees as /etc/hostname, /etc/hosts and /etc/resolv.conf, and its writable layer.
 * Name allocation happens under one lock file in the run root, so two mini-docker commands at
 * once never take the same name; a container's directory is created whole under that lock and
 * removed by first renaming it out of the way, so a reader never sees half of one.
 *
 * Nobody has to be alive for the state to stay true: every reader reconciles a container whose
 * owner (the process responsible for it: the `run` in the foreground, or the supervisor) and
 * process are gone (its supervisor was killed, or the host rebooted). Liveness is always read
 * from a process itself, by its PID and start time, never from how old a file is.
 */
import { dataRoot, runRoot } from "../base/paths.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { timestamp } from "../base/time.ts";
import { type Liveness, releaseVolumes } from "../volumes/store.ts";

/**
 * What state.json records. "restarting": ended, and its restart policy will start it again
 * (Docker's). A paused container is "running" with `paused` set.
 */
export type ContainerStatus = "created" | "running" | "restarting" | "exited";

/** Docker's `--restart` policy. */
export interface RestartPolicy {
  name: "no" | "on-failure" | "always" | "unless-stopped";
  /** on-failure:N: at most N restarts (0: no limit). */
  maximumRetryCount: number;
}

/** Docker's `Config` of a container: what the image and the flags asked for, as given. */
export interface ContainerConfig {
  /** The entrypoint and command as the image and flags set them (not merged). */
  entrypoint: string[] | null;
  cmd: string[] | null;
  /** `-u`, or the image's User: as given ("nobody", "1000:1000"); "" for the default. */
  user: string;
  labels: Record<string, string>;
  /** `-i`: its stdin is kept open. */
  openStdin: boolean;
  /** Its stdin closes when the first client attached to it closes its own (Docker's StdinOnce). */
  stdinOnce: boolean;
  /** `-t`: a pseudo-terminal. */
  tty: boolean;
  restartPolicy: RestartPolicy;
}

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
  /**
   * The mini-docker process responsible for the container while it starts, runs and is cleaned
   * up after (foreground run or supervisor); cleared once its cgroup and network are released.
   */
  owner?: ProcessRef;
  /** RFC 3339 times with nanoseconds. */
  created: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  oomKilled?: boolean;
  /** Image id ("sha256:...") when the root comes from an image. */
  image?: string;
  /** What the user named as the root: the image reference as given. */
  imageRef?: string;
  /** The base root filesystem directory, when not from an image. */
  rootfs?: string;
  /** The command as users see it (Docker's Path and Args): without the init of `--init`. */
  command: string[];
  /** Docker's Config (absent in containers made before it was recorded). */
  config?: ContainerConfig;
  /** Relative cgroup path ("mini-docker/<id>"). */
  cgroupsPath: string;
  /** Remove the container when it exits (`--rm`, and every foreground run). */
  autoRemove: boolean;
  /** Started with -d: its output goes to the log file. */
  detached: boolean;
  /** A signal sent by stop/kill, so an exit nobody observed still gets the right code. */
  killedBy?: number;
  /** Frozen by `pause` (its cgroup's freezer) until `unpause`. */
  paused?: boolean;
  /** Times its restart policy has started it again. */
  restartCount?: number;
  /** Stopped or killed by a user: `always` and `unless-stopped` leave it stopped. */
  manuallyStopped?: boolean;
  /** Why its last start failed (Docker's State.Error). */
  error?: string;
}

/** Docker's State.Status: created, running, paused, restarting or exited. */
export function displayStatus(state: ContainerState): string {
  return state.status === "running" && state.paused ? "paused" : state.status;
}

/** The Docker config of a container, with the defaults of one made before it was recorded. */
export function containerConfig(state: ContainerState): ContainerConfig {
  return state.config ?? {
    entrypoint: null,
    cmd: state.command,
    user: "",
    labels: {},
    openStdin: false,
    stdinOnce: false,
    tty: false,
    restartPolicy: { name: "no", maximumRetryCount: 0 },
  };
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

/**
 * This process as a name part, "<pid>.<start time>", for files that belong to it while it
 * lives (gates, /proc directories, containers being removed): `tagAlive` tells whether their
 * owner still does, so that a clean-up never touches those of a live process and never waits.
 */
export function ownerTag(): string {
  if (tag === undefined) {
    const self = processRef();
    tag = `${self.pid}.${self.startTime}`;
  }
  return tag;
}

let tag: string | undefined;

/** Whether the process named by the tag at the start of `name` ("<pid>.<start>-...") lives. */
export function tagAlive(name: string): boolean {
  const m = /^(\d+)\.(\d+)(?:-|$)/.exec(name);
  return m !== null && isAlive({ pid: Number(m[1]), startTime: Number(m[2]) });
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
    if (e.name.startsWith(".")) continue; // being removed (see removeState)
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
 * A container whose owner is gone, and whose process (if it ran) is gone too, has exited:
 * record it. Its exit status was lost with its owner; it is 128+N when mini-docker itself
 * killed it with signal N, else 255 (unknown), as Docker reports. A container that `create`
 * made and nobody started has no owner and stays "created".
 */
function reconcile(state: ContainerState): ContainerState {
  if (state.status === "exited") return state;
  if (state.owner === undefined && state.status === "created") return state;
  if (isAlive(state.owner)) return state;
  if (state.status === "running" && isAlive(state.process)) return state;
  const exited: ContainerState = {
    ...state,
    status: "exited",
    // Waiting to restart, it had ended with a code of its own; else the code was lost.
    exitCode: state.status === "restarting"
      ? state.exitCode ?? 255
      : state.killedBy !== undefined
      ? 128 + state.killedBy
      : 255,
    paused: false,
    finishedAt: state.finishedAt ?? timestamp(),
  };
  try {
    writeState(exited);
  } catch {
    // Removed meanwhile.
  }
  return exited;
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
/** Checks a container name: Docker's rules. */
export function checkName(name: string, exitCode?: number): void {
  if (!NAME_PATTERN.test(name)) {
    throw new UserError(
      `Invalid container name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
      exitCode,
    );
  }
}

export function createState(
  init: Omit<ContainerState, "name" | "status" | "created"> & { name?: string },
): ContainerState {
  if (init.name !== undefined) checkName(init.name);
  try {
    return withLock(() => {
      const states = listStates();
      const taken = new Set(states.map((s) => s.name));
      let name = init.name;
      if (name !== undefined) assertNameFree(name, states);
      while (name === undefined || taken.has(name)) name = randomName();
      const state: ContainerState = {
        ...init,
        name,
        status: "created",
        created: timestamp(),
      };
      Deno.mkdirSync(containersDir(), { recursive: true, mode: 0o711 });
      Deno.mkdirSync(stateDir(state.id), { mode: 0o711 });
      writeState(state);
      return state;
    });
  } catch (err) {
    // The volumes taken for it (volumes/mounts.ts) are let go: it never existed.
    if (volumesExist()) releaseVolumes(init.id, true, volumeLiveness);
    throw err;
  }
}

/** A container name that no container has (Docker's conflict otherwise). */
export function assertNameFree(
  name: string,
  states: readonly ContainerState[] = listStates(),
): void {
  const owner = states.find((s) => s.name === name);
  if (owner !== undefined) {
    throw new UserError(
      `Conflict: the container name "${name}" is already in use by container "${
        owner.id.slice(0, 12)
      }": remove that container or choose another name`,
    );
  }
}

/**
 * Removes a container's directory (state, config, log, layers): renamed first, in one step, to
 * `.removing-<owner tag>-<id>` (readers skip it), then deleted. If this process dies meanwhile,
 * `removeStaleRemovals` finishes the job as soon as it sees the owner gone.
 */
export function removeState(id: string, anonymousVolumes = true): void {
  const trash = `${containersDir()}/.removing-${ownerTag()}-${id}`;
  try {
    Deno.renameSync(stateDir(id), trash);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  Deno.removeSync(trash, { recursive: true });
  // Its volumes outlive it; its anonymous ones go with it (`rm -v`, `--rm`, a start that
  // failed), unless another container holds them too.
  if (volumesExist()) releaseVolumes(id, anonymousVolumes, volumeLiveness);
}

/** Whether volumes were ever made here (the volumes module has nothing to do otherwise). */
export function volumesExist(): boolean {
  try {
    Deno.statSync(`${dataRoot()}/volumes`);
    return true;
  } catch {
    return false;
  }
}

/** What a volume's reference needs to know (volumes/store.ts): containers and live processes. */
export const volumeLiveness: Liveness = {
  containerExists(id) {
    try {
      Deno.statSync(stateDir(id));
      return true;
    } catch {
      return false;
    }
  },
  tagAlive: (tag) => tagAlive(tag),
};

/**
 * What interrupted starts and removals left in the containers' directory: removals whose
 * process died (`.removing-*`), and directories without a state.json, which only a create
 * interrupted between its mkdir and its first write can leave (both happen under the lock that
 * this runs under). Never anything of a live process.
 */
export function removeStaleEntries(): void {
  withLock(() => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(containersDir())];
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${containersDir()}/${e.name}`;
      if (e.name.startsWith(".removing-")) {
        if (tagAlive(e.name.slice(".removing-".length))) continue;
      } else if (e.name.startsWith(".")) {
        continue;
      } else {
        try {
          Deno.statSync(`${path}/state.json`);
          continue;
        } catch { /* an interrupted create */ }
      }
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* removed meanwhile */ }
    }
  });
}

/**
 * Finds a container among `states` by full id, name, or unique id prefix, as Docker does: an
 * exact id or name first. Unknown or ambiguous references are UserErrors, exit code 1 as
 * Docker's (`run` never looks containers up).
 */
export function matchContainer(ref: string, states: readonly ContainerState[]): ContainerState {
  const exact = states.find((s) => s.id === ref || s.name === ref);
  if (exact !== undefined) return exact;
  const matches = /^[0-9a-f]+$/.test(ref) ? states.filter((s) => s.id.startsWith(ref)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UserError(
      `Multiple containers match "${ref}": use more of the id or the name`,
      EXIT_FAILURE,
    );
  }
  throw new UserError(`No such container: ${ref}`, EXIT_FAILURE);
}

/** Finds a container on disk by full id, name, or unique id prefix (see matchContainer). */
export function findContainer(ref: string): ContainerState {
  return matchContainer(ref, listStates());
}
