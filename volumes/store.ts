/**
 * Volumes on disk, as Docker's local driver keeps them: `<data root>/volumes/NAME/_data` is the
 * volume's content (its Mountpoint), `volume.json` beside it what `volume create` was given,
 * and `refs/<container id>` one file per container that mounts it, holding the tag
 * ("<pid>.<start time>") of the process that made the reference.
 *
 * A reference counts while its container exists, or while the process that made it lives (a
 * container being made has no directory yet); a stale one (its container gone, its maker dead)
 * is dropped by whoever finds it. Whether a container exists, and whether a process lives, is
 * the engine's knowledge: callers pass it in (`Liveness`). Every change (create, reference,
 * release, remove, prune) happens under one lock file in the run root, so a volume is never
 * removed while a container takes it, and two runs never create one twice.
 */
import { dataRoot, runRoot } from "../base/paths.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { timestamp } from "../base/time.ts";

/** A volume as `volume inspect` shows it (Docker's fields). */
export interface Volume {
  CreatedAt: string;
  Driver: "local";
  Labels: Record<string, string>;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string>;
  Scope: "local";
}

/** The label of an anonymous volume (Docker 23+'s, which `volume prune` without -a removes). */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";

/** Whether a reference still holds: its container exists, or its maker (a tag) lives. */
export interface Liveness {
  containerExists(id: string): boolean;
  tagAlive(tag: string): boolean;
}

const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The directory of every volume. */
export function volumesDir(): string {
  return `${dataRoot()}/volumes`;
}

/** A volume's directory (its data, definition and references). */
export function volumeDir(name: string): string {
  return `${volumesDir()}/${name}`;
}

/** A volume's content, the directory its containers mount. */
export function mountpoint(name: string): string {
  return `${volumeDir(name)}/_data`;
}

/** Runs `fn` holding the volumes' lock. */
export function withVolumeLock<T>(fn: () => T): T {
  Deno.mkdirSync(`${runRoot()}/volumes`, { recursive: true, mode: 0o700 });
  using file = Deno.openSync(`${runRoot()}/volumes/lock`, { create: true, write: true });
  file.lockSync(true);
  try {
    return fn();
  } finally {
    file.unlockSync();
  }
}

/** Checks a volume name: Docker's rules for the local driver. */
export function checkVolumeName(name: string): void {
  // The name is a directory's (NAME/_data): the file system takes 255 bytes.
  if (name.length > 255) {
    throw new UserError(
      `Invalid volume name "${
        name.slice(0, 16)
      }...": it has ${name.length} characters, at most 255 fit`,
    );
  }
  if (!NAME_PATTERN.test(name)) {
    throw new UserError(
      `Invalid volume name ${
        JSON.stringify(name)
      }: use at least two of [a-zA-Z0-9_.-], starting with a letter or digit (a host directory must be an absolute path)`,
    );
  }
}

/** A random 64-hex-digit name, as Docker's anonymous volumes have. */
export function anonymousName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A volume, or undefined when there is none of that name. */
export function readVolume(name: string): Volume | undefined {
  if (!NAME_PATTERN.test(name)) return undefined;
  let stored: { CreatedAt: string; Labels?: Record<string, string> };
  try {
    stored = JSON.parse(Deno.readTextFileSync(`${volumeDir(name)}/volume.json`));
  } catch {
    return undefined;
  }
  return {
    CreatedAt: stored.CreatedAt,
    Driver: "local",
    Labels: stored.Labels ?? {},
    Mountpoint: mountpoint(name),
    Name: name,
    Options: {},
    Scope: "local",
  };
}

/** A volume by name; an unknown one is Docker's "No such volume" (exit 1). */
export function findVolume(name: string): Volume {
  const volume = readVolume(name);
  if (volume === undefined) throw new UserError(`No such volume: ${name}`, EXIT_FAILURE);
  return volume;
}

/** Every volume, by name. */
export function listVolumes(): Volume[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(volumesDir())];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return entries.map((e) => readVolume(e.name)).filter((v) => v !== undefined)
    .sort((a, b) => a.Name.localeCompare(b.Name));
}

/**
 * Creates a volume (an existing one of that name is returned as it is, as Docker does), without
 * taking the lock: for callers that hold it.
 */
function createLocked(name: string, labels: Record<string, string>): Volume {
  const existing = readVolume(name);
  if (existing !== undefined) return existing;
  const dir = volumeDir(name);
  Deno.mkdirSync(volumesDir(), { recursive: true, mode: 0o700 });
  // Made whole under a temporary name, then renamed: a reader never sees half of one.
  const tmp = `${volumesDir()}/.creating-${crypto.randomUUID()}`;
  try {
    Deno.mkdirSync(tmp, { mode: 0o701 });
    Deno.mkdirSync(`${tmp}/_data`, { mode: 0o755 });
    Deno.mkdirSync(`${tmp}/refs`, { mode: 0o700 });
    const stored = { CreatedAt: timestamp().replace(/\.\d+Z$/, "Z"), Labels: labels };
    Deno.writeTextFileSync(`${tmp}/volume.json`, JSON.stringify(stored, null, 2) + "\n");
    Deno.renameSync(tmp, dir);
  } catch (err) {
    Deno.removeSync(tmp, { recursive: true });
    throw err;
  }
  return readVolume(name)!;
}

/** `volume create`: a new volume (or the existing one of that name). */
export function createVolume(
  name: string | undefined,
  labels: Record<string, string> = {},
): Volume {
  if (name !== undefined) checkVolumeName(name);
  return withVolumeLock(() => createLocked(name ?? anonymousName(), labels));
}

/**
 * Takes a volume for container `id` (creating it when missing, anonymous when `name` is
 * undefined): the reference that keeps it from `volume rm` and `prune` while the container
 * exists. `tag` names the process that takes it.
 */
export function takeVolume(name: string | undefined, id: string, tag: string): Volume {
  if (name !== undefined) checkVolumeName(name);
  return withVolumeLock(() => {
    const volume = createLocked(
      name ?? anonymousName(),
      name === undefined ? { [ANONYMOUS_LABEL]: "" } : {},
    );
    Deno.writeTextFileSync(`${volumeDir(volume.Name)}/refs/${id}`, tag);
    return volume;
  });
}

/** The containers that hold volume `name` now (stale references are dropped). */
function usersLocked(name: string, live: Liveness): string[] {
  const refs = `${volumeDir(name)}/refs`;
  const users: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(refs)];
  } catch {
    return users;
  }
  for (const e of entries) {
    let tag = "";
    try {
      tag = Deno.readTextFileSync(`${refs}/${e.name}`);
    } catch { /* released meanwhile */ }
    if (live.containerExists(e.name) || live.tagAlive(tag)) {
      users.push(e.name);
      continue;
    }
    try {
      Deno.removeSync(`${refs}/${e.name}`);
    } catch { /* released meanwhile */ }
  }
  return users.sort();
}

/** The containers that hold volume `name`. */
export function volumeUsers(name: string, live: Liveness): string[] {
  return withVolumeLock(() => usersLocked(name, live));
}

/** Removes a volume's whole directory (renamed out of the way first: readers skip it). */
function destroyLocked(name: string): void {
  const trash = `${volumesDir()}/.removing-${crypto.randomUUID()}`;
  Deno.renameSync(volumeDir(name), trash);
  Deno.removeSync(trash, { recursive: true });
}

/**
 * `volume rm`: refused while any container, running or stopped, holds it (Docker's message and
 * exit code 1).
 */
export function removeVolume(name: string, live: Liveness): void {
  withVolumeLock(() => {
    findVolume(name);
    const users = usersLocked(name, live);
    if (users.length > 0) {
      throw new UserError(
        `remove ${name}: volume is in use - [${users.join(", ")}]: remove those containers first`,
        EXIT_FAILURE,
      );
    }
    destroyLocked(name);
  });
}

/**
 * Container `id` lets its volumes go (it is being removed); its anonymous ones that no other
 * container holds are removed too when `removeAnonymous` (`rm -v`, `--rm`).
 */
export function releaseVolumes(id: string, removeAnonymous: boolean, live: Liveness): void {
  withVolumeLock(() => {
    for (const volume of listVolumes()) {
      const ref = `${volumeDir(volume.Name)}/refs/${id}`;
      try {
        Deno.removeSync(ref);
      } catch {
        continue; // not one of its volumes
      }
      if (!removeAnonymous || !(ANONYMOUS_LABEL in volume.Labels)) continue;
      if (usersLocked(volume.Name, live).length === 0) destroyLocked(volume.Name);
    }
  });
}

/**
 * `volume prune`: removes the volumes no container holds that `wanted` lets through (Docker
 * 23+: the anonymous ones, every one with `all`). Their names and the bytes they held.
 */
export function pruneVolumes(
  all: boolean,
  live: Liveness,
  wanted: (v: Volume) => boolean = () => true,
  size: (dir: string) => number = () => 0,
): { names: string[]; bytes: number } {
  return withVolumeLock(() => {
    const names: string[] = [];
    let bytes = 0;
    for (const volume of listVolumes()) {
      if (!all && !(ANONYMOUS_LABEL in volume.Labels)) continue;
      if (!wanted(volume) || usersLocked(volume.Name, live).length > 0) continue;
      bytes += size(volume.Mountpoint);
      destroyLocked(volume.Name);
      names.push(volume.Name);
    }
    return { names, bytes };
  });
}

/**
 * What interrupted work left, under the lock: creates and removals (`.creating-*`,
 * `.removing-*`: both happen under the lock, so what is seen here is stale), and the copy-up
 * staging directories (`NAME/.copyup-<tag>-*`) of processes that are gone.
 */
export function removeStaleVolumeEntries(live: Liveness): void {
  withVolumeLock(() => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(volumesDir())];
    } catch {
      return;
    }
    const remove = (path: string) => {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* removed meanwhile */ }
    };
    for (const e of entries) {
      if (e.name.startsWith(".creating-") || e.name.startsWith(".removing-")) {
        remove(`${volumesDir()}/${e.name}`);
        continue;
      }
      if (e.name.startsWith(".")) continue;
      try {
        for (const f of Deno.readDirSync(volumeDir(e.name))) {
          if (f.name.startsWith(".copyup-") && !live.tagAlive(f.name.slice(".copyup-".length))) {
            remove(`${volumeDir(e.name)}/${f.name}`);
          }
        }
      } catch { /* removed meanwhile */ }
    }
  });
}
