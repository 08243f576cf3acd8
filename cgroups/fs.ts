/**
 * What both cgroup drivers share: reading and writing cgroupfs files with the kernel's formats,
 * errors in the user's terms, the controllers a set of limits needs, and the kill-wait-rmdir
 * loop of `destroy`. Directories are made and removed through `CgroupFs`, because on cgroupfs
 * `mkdir` is where the kernel creates a cgroup's files: the unit tests replace it with a fake
 * that does the same in a temp dir.
 */
import { UserError } from "../base/errors.ts";
import type { LinuxResources } from "../base/spec.ts";
import type { CgroupStats } from "./cgroup.ts";

/** The two directory operations whose effect on cgroupfs a plain directory cannot show. */
export interface CgroupFs {
  /** Creates one cgroup directory (its parent exists); throws Deno.errors.AlreadyExists. */
  mkdir(path: string): void;
  /** Removes one empty cgroup directory; throws Deno.errors.Busy while it is in use. */
  rmdir(path: string): void;
}

/** The real kernel: cgroupfs makes and removes a cgroup's files itself. */
export const kernelFs: CgroupFs = {
  mkdir: (path) => Deno.mkdirSync(path),
  rmdir: (path) => Deno.removeSync(path),
};

/** How long `destroy` waits for the killed processes to leave, before it gives up. */
export const DESTROY_TIMEOUT_MS = 5000;

/** The flag each resource comes from, for messages: the user knows flags, not files. */
export const LIMIT_FLAGS = {
  memory: "--memory",
  reservation: "--memory-reservation",
  swap: "--memory-swap",
  quota: "--cpus",
  shares: "--cpu-shares",
  cpus: "--cpuset-cpus",
  mems: "--cpuset-mems",
  pids: "--pids-limit",
} as const;

/** One resource of LinuxResources that needs a controller, and the controller it needs. */
export interface Need {
  flag: string;
  controller: "memory" | "cpu" | "cpuset" | "pids";
}

/** The controllers that `resources` needs, one entry per limit that is set. */
export function neededControllers(resources: LinuxResources): Need[] {
  const needs: Need[] = [];
  const { memory, cpu, pids } = resources;
  if (memory?.limit !== undefined) needs.push({ flag: LIMIT_FLAGS.memory, controller: "memory" });
  if (memory?.reservation !== undefined) {
    needs.push({ flag: LIMIT_FLAGS.reservation, controller: "memory" });
  }
  if (memory?.swap !== undefined) needs.push({ flag: LIMIT_FLAGS.swap, controller: "memory" });
  if (cpu?.quota !== undefined || cpu?.period !== undefined) {
    needs.push({ flag: LIMIT_FLAGS.quota, controller: "cpu" });
  }
  if (cpu?.shares !== undefined) needs.push({ flag: LIMIT_FLAGS.shares, controller: "cpu" });
  if (cpu?.cpus !== undefined) needs.push({ flag: LIMIT_FLAGS.cpus, controller: "cpuset" });
  if (cpu?.mems !== undefined) needs.push({ flag: LIMIT_FLAGS.mems, controller: "cpuset" });
  if (pids !== undefined) needs.push({ flag: LIMIT_FLAGS.pids, controller: "pids" });
  return needs;
}

/** `pids.max` for a pids limit, on both versions: -1 or 0 is no limit. */
export function pidsMax(limit: number): string {
  return limit > 0 ? String(limit) : "max";
}

/** Checks a cgroup name: one path component, as container IDs and names are. */
export function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new UserError(`Invalid cgroup name "${name}": expected letters, digits, "_", "." or "-"`);
  }
}

/**
 * Splits a parent like "mini-docker" or "a/b" into its components, refusing "." and "..". An
 * empty parent is the hierarchy's root (an OCI bundle's `cgroupsPath` such as "/name").
 */
export function parentComponents(parent: string): string[] {
  const parts = parent.split("/").filter((part) => part !== "");
  if (parts.some((part) => !/^[A-Za-z0-9_.@:-]+$/.test(part) || /^\.\.?$/.test(part))) {
    throw new UserError(`Invalid cgroup parent "${parent}": expected a relative path`);
  }
  return parts;
}

/** The kernel's reason from a Deno error: "Device or resource busy (os error 16): ..." -> the first part. */
export function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /^(.*?) \(os error \d+\)/.exec(message)?.[1] ?? message;
}

/** Keeps only the counters the host reported: `stats()` has no keys whose value is undefined. */
export function reported(stats: CgroupStats): CgroupStats {
  return Object.fromEntries(Object.entries(stats).filter(([, v]) => v !== undefined));
}

/** A file's text, or undefined when it does not exist (the host lacks that counter). */
export function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** A one-number file ("67108864\n"); "max" and missing files are undefined. */
export function readNumber(path: string): number | undefined {
  const text = readText(path)?.trim();
  if (text === undefined || text === "" || text === "max") return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** A flat-keyed file ("usage_usec 123\nuser_usec 45\n"), as a map; empty when missing. */
export function readKeyed(path: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of (readText(path) ?? "").split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && value !== "") values.set(key, Number(value));
  }
  return values;
}

/** The PIDs listed in a cgroup.procs file (none when the cgroup is gone). */
export function readPids(procsFile: string): number[] {
  const text = readText(procsFile) ?? "";
  return text.split("\n").filter((line) => line !== "").map(Number);
}

/**
 * Writes one value to a cgroup file, as the kernel wants it (no newline needed). A refusal is
 * a UserError naming the file, the value and the directory.
 */
export function writeValue(dir: string, file: string, value: string): void {
  try {
    Deno.writeTextFileSync(`${dir}/${file}`, value, { create: false });
  } catch (err) {
    throw new UserError(`Cannot set ${file} to "${value}" in ${dir}: ${reason(err)}`);
  }
}

/** Whether a path exists (a cgroup directory or an interface file). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Creates the parent cgroup `<mount>/<parent>` level by level (each level is a cgroup: on v2
 * its controllers must be enabled, on v1 cpuset its CPUs set) and calls `prepare` on every
 * level below the mount, existing or new. Another container may create the same level at the
 * same time: AlreadyExists is fine here.
 */
export function ensureParent(
  mount: string,
  parent: string,
  fs: CgroupFs,
  prepare?: (dir: string, above: string) => void,
): string {
  let dir = mount;
  for (const part of parentComponents(parent)) {
    const above = dir;
    dir = `${dir}/${part}`;
    if (!exists(dir)) {
      try {
        fs.mkdir(dir);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) {
          throw new UserError(`Cannot create cgroup ${dir}: ${reason(err)}`);
        }
      }
    }
    prepare?.(dir, above);
  }
  return dir;
}

/** Creates a container's own cgroup directory; one that exists already is an error. */
export function createLeaf(dir: string, fs: CgroupFs): void {
  try {
    fs.mkdir(dir);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new UserError(`Cannot create cgroup ${dir}: it already exists`);
    }
    throw new UserError(`Cannot create cgroup ${dir}: ${reason(err)}`);
  }
}

/** Removes directories made by a create that failed (no process ever joined them). */
export function removeQuietly(dirs: readonly string[], fs: CgroupFs): void {
  for (const dir of [...dirs].reverse()) {
    try {
      fs.rmdir(dir);
    } catch {
      // Best effort: the error that made create fail is the one the user must see.
    }
  }
}

/** A cgroup and its descendants (a container may make its own), deepest first. */
function subtree(dir: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const below = entries.filter((e) => e.isDirectory).flatMap((e) => subtree(`${dir}/${e.name}`));
  return [...below, dir];
}

/**
 * Kills everything in the cgroup directories (and their descendants) with SIGKILL until none
 * is left, then removes the directories, deepest first. Bounded: after `timeoutMs` it gives up
 * with a UserError. (The v2 driver writes `cgroup.kill` first: one write for the subtree.)
 */
export async function killAndRemove(
  dirs: readonly string[],
  fs: CgroupFs,
  timeoutMs: number = DESTROY_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tree = dirs.flatMap(subtree);
    if (tree.length === 0) return;
    const pids = new Set(tree.flatMap((dir) => readPids(`${dir}/cgroup.procs`)));
    let busy = "";
    if (pids.size === 0) {
      busy = removeTree(tree, fs);
      if (busy === "") return;
    }
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already gone (ESRCH) between the read and the kill.
      }
    }
    if (Date.now() >= deadline) {
      const detail = pids.size > 0
        ? `${pids.size} processes still running after ${timeoutMs / 1000} s`
        : busy;
      throw new UserError(`Cannot remove cgroup ${dirs[0]}: ${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** How long freezing or thawing may take before it is given up. */
export const FREEZE_TIMEOUT_MS = 5000;

/**
 * Writes `value` to `file` in `dir`, then waits until `done()` says the kernel has finished
 * (a freezer reports "FREEZING" or "frozen 0" until every task has stopped). Bounded: after
 * `timeoutMs` a UserError says what did not happen.
 */
export async function writeAndWait(
  dir: string,
  file: string,
  value: string,
  done: () => boolean,
  what: string,
  timeoutMs: number = FREEZE_TIMEOUT_MS,
): Promise<void> {
  writeValue(dir, file, value);
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; !done(); wait = Math.min(wait * 2, 50)) {
    if (Date.now() >= deadline) {
      throw new UserError(`Cannot ${what} cgroup ${dir}: not done after ${timeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Removes empty cgroup directories; returns "" or the reason one is still busy. */
function removeTree(tree: readonly string[], fs: CgroupFs): string {
  for (const dir of tree) {
    try {
      fs.rmdir(dir);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      if (err instanceof Deno.errors.Busy) return reason(err);
      throw new UserError(`Cannot remove cgroup ${dir}: ${reason(err)}`);
    }
  }
  return "";
}
