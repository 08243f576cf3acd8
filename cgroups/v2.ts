/**
 * The cgroup v2 driver: one unified hierarchy, the container's cgroup at
 * `<root>/<parent>/<name>`. Controllers are handed down level by level through
 * `cgroup.subtree_control`; limits are one file each (`memory.max`, `cpu.max`, `pids.max`);
 * device rules are a BPF program attached to the directory (devices.ts); `cgroup.kill` ends
 * the whole subtree in one write. It owns the v2 file names and formats and the v1-to-v2
 * conversions (cpu.shares to cpu.weight, memory+swap to swap alone).
 * See https://docs.kernel.org/admin-guide/cgroup-v2.html for the file formats.
 */
import { UserError } from "../base/errors.ts";
import type { LinuxResources } from "../base/spec.ts";
import {
  type CgroupFs,
  checkName,
  createLeaf,
  ensureParent,
  exists,
  kernelFs,
  killAndRemove,
  LIMIT_FLAGS,
  type Need,
  neededControllers,
  parentComponents,
  pidsMax,
  readKeyed,
  readNumber,
  readPids,
  readText,
  removeQuietly,
  reported,
  writeAndWait,
  writeValue,
} from "./fs.ts";
import type { Cgroup, CgroupDriver, CgroupStats, CreateOptions } from "./cgroup.ts";
import { attachDeviceRules, normalizeRules } from "./devices.ts";

/** Controllers enabled for containers when the host has them: limits and stats need them. */
const CONTROLLERS = ["memory", "cpu", "pids", "cpuset"] as const;

/** The kernel's default CFS period (cpu.max "max 100000"). */
const DEFAULT_PERIOD_US = 100000;

/**
 * v1 `cpu.shares` [2, 262144] to v2 `cpu.weight` [1, 10000], with runc's linear formula and
 * integer division (`1 + ((shares - 2) * 9999) / 262142`): 2 -> 1, 1024 -> 39, 262144 -> 10000.
 * Out-of-range shares are clamped first, as the v1 kernel does.
 */
export function cpuSharesToWeight(shares: number): number {
  const clamped = Math.min(Math.max(Math.trunc(shares), 2), 262144);
  return 1 + Math.floor(((clamped - 2) * 9999) / 262142);
}

/** Where the v2 driver works. `fs` is replaced only by the unit tests' fake cgroupfs. */
export interface CgroupV2Options {
  root: string;
  parent: string;
  fs?: CgroupFs;
}

/** The driver for a pure cgroup v2 host (`cgroup.controllers` at the root). */
export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2;
  readonly root: string;
  readonly parent: string;
  readonly #fs: CgroupFs;

  constructor(opts: CgroupV2Options) {
    this.root = opts.root;
    this.parent = parentComponents(opts.parent).join("/");
    this.#fs = opts.fs ?? kernelFs;
  }

  create(name: string, resources: LinuxResources, options: CreateOptions = {}): Cgroup {
    checkName(name);
    const rules = resources.devices === undefined ? undefined : normalizeRules(resources.devices);
    const needs = neededControllers(resources);
    const fs = this.#fs;
    // The root hands controllers to the parent, the parent to the container.
    enableControllers(this.root, needs);
    const parentDir = ensureParent(
      this.root,
      this.parent,
      fs,
      (dir) => enableControllers(dir, needs),
    );
    const dir = `${parentDir}/${name}`;
    createLeaf(dir, fs);
    try {
      if (!options.deferLimits) applyResources(dir, resources);
      // Devices need no controller: the program attaches to any cgroup2 directory.
      if (rules !== undefined) attachDeviceRules(dir, rules);
    } catch (err) {
      removeQuietly([dir], fs);
      throw err;
    }
    return new CgroupV2(dir, fs);
  }

  open(name: string): Cgroup | undefined {
    checkName(name);
    const dir = `${this.root}/${this.parent}/${name}`;
    return exists(dir) ? new CgroupV2(dir, this.#fs) : undefined;
  }

  list(): string[] {
    try {
      return [...Deno.readDirSync(`${this.root}/${this.parent}`)]
        .filter((entry) => entry.isDirectory)
        .map((entry) => entry.name)
        .sort();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /**
   * The root cgroup has no `memory.swap.*` files: look in a cgroup below it that has the
   * memory controller (our parent, this process's own cgroup, or any child of the root). A host
   * where none has it yet (memory not enabled below the root) has swap accounting unless the
   * kernel was booted with swapaccount=0.
   */
  swapAccounting(): boolean {
    const candidates = [`${this.root}/${this.parent}`];
    const own = /^0::(\/.+)$/m.exec(readText("/proc/self/cgroup") ?? "")?.[1];
    if (own !== undefined) candidates.push(`${this.root}${own}`);
    try {
      for (const entry of Deno.readDirSync(this.root)) {
        if (entry.isDirectory) candidates.push(`${this.root}/${entry.name}`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const withMemory = candidates.find((dir) => exists(`${dir}/memory.current`));
    if (withMemory !== undefined) return exists(`${withMemory}/memory.swap.max`);
    return !/\bswapaccount=0\b/.test(readText("/proc/cmdline") ?? "");
  }
}

/** Words of a space-separated controller list ("cpuset cpu io memory pids\n"). */
function words(text: string | undefined): Set<string> {
  return new Set((text ?? "").split(/\s+/).filter((word) => word !== ""));
}

/**
 * Enables our controllers in `dir`'s `cgroup.subtree_control`, among those that `dir` has
 * (its `cgroup.controllers`). A limit whose controller `dir` lacks is an error naming both.
 */
function enableControllers(dir: string, needs: readonly Need[]): void {
  const available = words(readText(`${dir}/cgroup.controllers`));
  for (const need of needs) {
    if (!available.has(need.controller)) {
      throw new UserError(
        `Cannot apply ${need.flag}: the ${need.controller} controller is not enabled on this host (cgroup v2 at ${dir})`,
      );
    }
  }
  const enabled = words(readText(`${dir}/cgroup.subtree_control`));
  const missing = CONTROLLERS.filter((c) => available.has(c) && !enabled.has(c));
  if (missing.length === 0) return;
  try {
    writeValue(dir, "cgroup.subtree_control", missing.map((c) => `+${c}`).join(" "));
  } catch (err) {
    // The kernel applies all or nothing: try again with only what the limits need.
    const needed = missing.filter((c) => needs.some((need) => need.controller === c));
    if (needed.length === missing.length) throw err;
    if (needed.length > 0) {
      writeValue(dir, "cgroup.subtree_control", needed.map((c) => `+${c}`).join(" "));
    }
  }
}

/** Writes each limit that is set to its v2 file, in the kernel's format. */
function applyResources(dir: string, resources: LinuxResources): void {
  const { memory, cpu, pids } = resources;
  if (memory?.limit !== undefined) {
    writeValue(dir, "memory.max", memory.limit < 0 ? "max" : String(memory.limit));
  }
  if (memory?.reservation !== undefined && memory.reservation >= 0) {
    writeValue(dir, "memory.low", String(memory.reservation));
  }
  if (memory?.swap !== undefined) {
    // OCI's swap is memory+swap; v2 limits swap alone. The spec's validation made sure that
    // limit <= swap: a negative rest would be the kernel's EINVAL.
    const swap = memory.swap === -1 ? "max" : String(memory.swap - (memory.limit ?? 0));
    if (exists(`${dir}/memory.swap.max`)) {
      writeValue(dir, "memory.swap.max", swap);
    } else if (swap !== "max") {
      throw new UserError(
        `Cannot apply ${LIMIT_FLAGS.swap} "${memory.swap}": swap accounting is not enabled on this host (no memory.swap.max in ${dir})`,
      );
    }
  }
  if (cpu?.shares) writeValue(dir, "cpu.weight", String(cpuSharesToWeight(cpu.shares)));
  if (cpu?.quota !== undefined || cpu?.period !== undefined) {
    const quota = cpu.quota !== undefined && cpu.quota > 0 ? String(cpu.quota) : "max";
    writeValue(dir, "cpu.max", `${quota} ${cpu.period ?? DEFAULT_PERIOD_US}`);
  }
  if (cpu?.cpus !== undefined) writeValue(dir, "cpuset.cpus", cpu.cpus);
  if (cpu?.mems !== undefined) writeValue(dir, "cpuset.mems", cpu.mems);
  if (pids !== undefined) writeValue(dir, "pids.max", pidsMax(pids.limit));
}

/** A container's v2 cgroup: one directory. */
class CgroupV2 implements Cgroup {
  readonly paths: readonly string[];
  readonly procsFiles: readonly string[];
  readonly #dir: string;
  readonly #fs: CgroupFs;

  constructor(dir: string, fs: CgroupFs) {
    this.#dir = dir;
    this.#fs = fs;
    this.paths = [dir];
    this.procsFiles = [`${dir}/cgroup.procs`];
  }

  pids(): number[] {
    return readPids(`${this.#dir}/cgroup.procs`);
  }

  stats(): CgroupStats {
    const dir = this.#dir;
    const cpu = readKeyed(`${dir}/cpu.stat`);
    return reported({
      memoryUsage: readNumber(`${dir}/memory.current`),
      memoryPeak: readNumber(`${dir}/memory.peak`),
      memoryLimit: readNumber(`${dir}/memory.max`),
      memoryInactiveFile: readKeyed(`${dir}/memory.stat`).get("inactive_file"),
      cpuUsageUsec: cpu.get("usage_usec"),
      cpuUserUsec: cpu.get("user_usec"),
      cpuSystemUsec: cpu.get("system_usec"),
      cpuPeriods: cpu.get("nr_periods"),
      cpuThrottledPeriods: cpu.get("nr_throttled"),
      cpuThrottledUsec: cpu.get("throttled_usec"),
      pidsCurrent: readNumber(`${dir}/pids.current`),
      pidsPeak: readNumber(`${dir}/pids.peak`),
      oomKills: this.oomKills(),
    });
  }

  oomKills(): number | undefined {
    return readKeyed(`${this.#dir}/memory.events`).get("oom_kill");
  }

  update(resources: LinuxResources): void {
    applyResources(this.#dir, resources);
  }

  updatePids(limit: number): void {
    writeValue(this.#dir, "pids.max", pidsMax(limit));
  }

  async freeze(): Promise<void> {
    this.#checkFreezer();
    try {
      await writeAndWait(this.#dir, "cgroup.freeze", "1", () => this.#events() === "1", "freeze");
    } catch (err) {
      writeValue(this.#dir, "cgroup.freeze", "0"); // not half frozen
      throw err;
    }
  }

  async thaw(): Promise<void> {
    this.#checkFreezer();
    await writeAndWait(this.#dir, "cgroup.freeze", "0", () => this.#events() === "0", "thaw");
  }

  frozen(): boolean {
    return readText(`${this.#dir}/cgroup.freeze`)?.trim() === "1";
  }

  /** The "frozen" field of cgroup.events: "1" once every task is frozen. */
  #events(): string | undefined {
    return /^frozen (\d)$/m.exec(readText(`${this.#dir}/cgroup.events`) ?? "")?.[1];
  }

  #checkFreezer(): void {
    if (!exists(`${this.#dir}/cgroup.freeze`)) {
      throw new UserError(
        `Cannot pause or unpause: this kernel has no cgroup v2 freezer (cgroup.freeze, Linux 5.2+) in ${this.#dir}`,
      );
    }
  }

  async destroy(): Promise<void> {
    const dir = this.#dir;
    if (!exists(dir)) return;
    // Frozen tasks die of SIGKILL on v2, but a thawed cgroup also lets the fallback below work.
    if (this.frozen()) writeValue(dir, "cgroup.freeze", "0");
    // One write kills the whole subtree (kernel 5.14+); older kernels get SIGKILL per PID.
    if (exists(`${dir}/cgroup.kill`)) writeValue(dir, "cgroup.kill", "1");
    await killAndRemove([dir], this.#fs);
  }
}
