/**
 * Containers on disk: one directory per container under `<runroot>/containers/<id>` holding
 * `state.json` (written atomically: temp file + rename) and the files the container sees
 * (/etc/hostname, /etc/hosts, /etc/resolv.conf) plus the sync socket. Name and id allocation
 * happen under one lock file, so two mini-docker commands at once never take the same name.
 */
import { runRoot } from "./paths.ts";
import { UserError } from "./errors.ts";

export type ContainerStatus = "created" | "running" | "exited";

/** What `state.json` holds. */
export interface ContainerState {
  id: string;
  name: string;
  status: ContainerStatus;
  /** Host PID of the container's PID 1 while it runs. */
  pid?: number;
  /** ISO 8601 times. */
  created: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  oomKilled?: boolean;
  /** Image id ("sha256:...") when the root comes from an image. */
  image?: string;
  /** The base root filesystem directory, when not from an image. */
  rootfs?: string;
  command: string[];
  /** Relative cgroup path ("mini-docker/<id>"). */
  cgroupsPath: string;
}

/** Directory holding every container's state directory. */
export function containersDir(): string {
  return `${runRoot()}/containers`;
}

/** A container's state directory. */
export function stateDir(id: string): string {
  return `${containersDir()}/${id}`;
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

/** Reads every container's state; entries being written or removed are skipped. */
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
  return out;
}

/** A container's state, or undefined when it has none (yet, or any more). */
export function readState(id: string): ContainerState | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(`${stateDir(id)}/state.json`));
  } catch {
    return undefined;
  }
}

/** Writes `state.json` atomically: readers see the old or the new file, never a part. */
export function writeState(state: ContainerState): void {
  const dir = stateDir(state.id);
  const tmp = `${dir}/.state.json.${crypto.randomUUID()}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
  Deno.renameSync(tmp, `${dir}/state.json`);
}

/**
 * Creates a new container's state directory and first `state.json`, choosing a unique name
 * (or checking the requested one) under the lock.
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
    const taken = new Set(listStates().map((s) => s.name));
    let name = init.name;
    if (name !== undefined && taken.has(name)) {
      const owner = listStates().find((s) => s.name === name)!;
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
    Deno.mkdirSync(containersDir(), { recursive: true, mode: 0o700 });
    Deno.mkdirSync(stateDir(state.id), { mode: 0o711 });
    writeState(state);
    return state;
  });
}

/** Removes a container's state directory. */
export function removeState(id: string): void {
  try {
    Deno.removeSync(stateDir(id), { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
