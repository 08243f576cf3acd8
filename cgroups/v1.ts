/**
 * The cgroup v1 driver (also used on hybrid hosts, whose cgroup2 mount holds none of the
 * controllers we need): one hierarchy per controller, the container's cgroup at
 * `<root>/<controller>/<parent>/<name>` in each. A combined mount (`cpu,cpuacct`, with `cpu`
 * and `cpuacct` as symlinks to it) is one directory shared by its controllers. It owns the v1
 * file names and formats, and which controllers a container gets: memory, cpu, cpuacct, pids and
 * freezer (`pause`) always, where the host mounts them; cpuset for CPU or memory-node limits,
 * devices when there are device rules.
 * See https://docs.kernel.org/admin-guide/cgroup-v1/ for the file formats.
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
import { type DeviceRule, devicesV1Writes, normalizeRules } from "./devices.ts";

/**
 * Controllers every container gets, limited or not: stats and kill work through them, and
 * `pause` through the freezer (it must hold the processes from their start: moving a running
 * container's processes in at pause time would race with its forks).
 */
const ALWAYS = ["memory", "cpu", "cpuacct", "pids", "freezer"] as const;
/**
 * Every controller this driver uses; cpuset only when CPUs or memory nodes are set, devices
 * only when there are device rules.
 */
const KNOWN: readonly string[] = [...ALWAYS, "cpuset", "devices"];

/** USER_HZ: cpuacct.stat counts in 1/100 s. */
const USER_HZ = 100;

/** memory.limit_in_bytes reads PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages) when unlimited. */
const UNLIMITED_BYTES = 2 ** 62;

/**
 * Finds each controller's hierarchy from the directory names under `root` ("memory",
 * "cpu,cpuacct"). Symlinks ("cpu" -> "cpu,cpuacct") are skipped: their target is listed too.
 */
export function findControllerMounts(root: string): Map<string, string> {
  const mounts = new Map<string, string>();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return mounts;
    throw err;
  }
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    for (const controller of entry.name.split(",")) {
      if (KNOWN.includes(controller) && !mounts.has(controller)) {
        mounts.set(controller, `${root}/${entry.name}`);
      }
    }
  }
  return mounts;
}

/** Where the v1 driver works. */
export interface CgroupV1Options {
  root: string;
  parent: string;
  fs?: CgroupFs;
}

/** The driver for v1 and hybrid hosts. */
export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1;
  readonly root: string;
  readonly parent: string;
  /** Controller name -> its hierarchy's mount directory. */
  readonly mounts: ReadonlyMap<string, string>;
  readonly #fs: CgroupFs;

  constructor(opts: CgroupV1Options) {
    this.root = opts.root;
    this.parent = parentComponents(opts.parent).join("/");
    this.mounts = findControllerMounts(opts.root);
    this.#fs = opts.fs ?? kernelFs;
  }

  create(name: string, resources: LinuxResources, options: CreateOptions = {}): Cgroup {
    checkName(name);
    if (options.deferLimits) throw new Error("cgroup v1: deferLimits is for cgroup v2 only");
    const rules = resources.devices === undefined ? undefined : normalizeRules(resources.devices);
    const needs = neededControllers(resources);
    for (const need of needs) {
      if (!this.mounts.has(need.controller)) {
        throw new UserError(
          `Cannot apply ${need.flag}: the ${need.controller} controller is not mounted on this host (cgroup v1 at ${this.root})`,
        );
      }
    }
    if (rules !== undefined && !this.mounts.has("devices")) {
      throw new UserError(
        `Cannot apply device rules: the devices controller is not mounted on this host (cgroup v1 at ${this.root})`,
      );
    }
    const wanted: string[] = [...ALWAYS];
    if (needs.some((need) => need.controller === "cpuset")) wanted.push("cpuset");
    if (rules !== undefined) wanted.push("devices");
    const controllers = wanted.filter((c) => this.mounts.has(c));
    if (controllers.length === 0) {
      throw new UserError(
        `Cannot create cgroup "${name}": no cgroup v1 controllers under ${this.root}`,
      );
    }

    const fs = this.#fs;
    const cpusetMount = this.mounts.get("cpuset");
    const byMount = new Map<string, string>();
    const dirs = new Map<string, string>();
    const created: string[] = [];
    try {
      for (const controller of controllers) {
        const mount = this.mounts.get(controller)!;
        let dir = byMount.get(mount);
        if (dir === undefined) {
          // A new v1 cpuset cgroup has no CPUs: every level takes its parent's, or joining fails.
          const prepare = mount === cpusetMount ? inheritCpuset : undefined;
          const parentDir = ensureParent(mount, this.parent, fs, prepare);
          dir = `${parentDir}/${name}`;
          createLeaf(dir, fs);
          created.push(dir);
          prepare?.(dir, parentDir);
          byMount.set(mount, dir);
        }
        dirs.set(controller, dir);
      }
      applyResources(dirs, resources);
      if (rules !== undefined) applyDeviceRules(dirs.get("devices")!, rules);
    } catch (err) {
      removeQuietly(created, fs);
      throw err;
    }
    return new CgroupV1(dirs, fs);
  }

  open(name: string): Cgroup | undefined {
    checkName(name);
    const dirs = new Map<string, string>();
    for (const controller of KNOWN) {
      const mount = this.mounts.get(controller);
      if (mount === undefined) continue;
      const dir = `${mount}/${this.parent}/${name}`;
      if (exists(dir)) dirs.set(controller, dir);
    }
    return dirs.size > 0 ? new CgroupV1(dirs, this.#fs) : undefined;
  }

  list(): string[] {
    const names = new Set<string>();
    for (const mount of new Set(this.mounts.values())) {
      try {
        for (const entry of Deno.readDirSync(`${mount}/${this.parent}`)) {
          if (entry.isDirectory) names.add(entry.name);
        }
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    return [...names].sort();
  }

  swapAccounting(): boolean {
    const mount = this.mounts.get("memory");
    return mount !== undefined && exists(`${mount}/memory.memsw.limit_in_bytes`);
  }
}

/** Copies the cpuset of `above` into `dir` where `dir`'s is empty (a new cpuset cgroup). */
function inheritCpuset(dir: string, above: string): void {
  for (const file of ["cpuset.cpus", "cpuset.mems"]) {
    if ((readText(`${dir}/${file}`) ?? "").trim() !== "") continue;
    writeValue(dir, file, (readText(`${above}/${file}`) ?? "").trim());
  }
}

/** Writes each limit that is set to its v1 file, in the kernel's format. */
function applyResources(dirs: ReadonlyMap<string, string>, resources: LinuxResources): void {
  const { memory, cpu, pids } = resources;
  const memoryDir = dirs.get("memory");
  if (memory !== undefined && memoryDir !== undefined) {
    setMemoryAndSwap(memoryDir, memory);
    if (memory.reservation !== undefined && memory.reservation >= 0) {
      writeValue(memoryDir, "memory.soft_limit_in_bytes", String(memory.reservation));
    }
  }
  const cpuDir = dirs.get("cpu");
  if (cpu !== undefined && cpuDir !== undefined) {
    if (cpu.shares) writeValue(cpuDir, "cpu.shares", String(cpu.shares));
    // The period first: the kernel checks the quota against it.
    if (cpu.period !== undefined) writeValue(cpuDir, "cpu.cfs_period_us", String(cpu.period));
    if (cpu.quota !== undefined || cpu.period !== undefined) {
      const quota = cpu.quota !== undefined && cpu.quota > 0 ? cpu.quota : -1;
      writeValue(cpuDir, "cpu.cfs_quota_us", String(quota));
    }
  }
  const cpusetDir = dirs.get("cpuset");
  if (cpu !== undefined && cpusetDir !== undefined) {
    if (cpu.cpus !== undefined) writeValue(cpusetDir, "cpuset.cpus", cpu.cpus);
    if (cpu.mems !== undefined) writeValue(cpusetDir, "cpuset.mems", cpu.mems);
  }
  const pidsDir = dirs.get("pids");
  if (pids !== undefined && pidsDir !== undefined) {
    writeValue(pidsDir, "pids.max", pidsMax(pids.limit));
  }
}

/**
 * Writes the rules to the container's devices cgroup, in order, while no process is in it: the
 * kernel checks every open and mknod against the list they leave (see devices.ts for how that
 * list relates to the rules). A write the kernel refuses names the rule's line.
 */
function applyDeviceRules(dir: string, rules: readonly DeviceRule[]): void {
  for (const { file, value } of devicesV1Writes(rules)) writeValue(dir, file, value);
}

/**
 * memory.limit_in_bytes and memory.memsw.limit_in_bytes: the kernel refuses any step where
 * memsw < limit, so memsw goes first when it ends at or above the current limit, last otherwise.
 */
function setMemoryAndSwap(dir: string, memory: NonNullable<LinuxResources["memory"]>): void {
  const limit = memory.limit === undefined
    ? undefined
    : String(memory.limit < 0 ? -1 : memory.limit);
  let swap: string | undefined;
  if (memory.swap !== undefined) {
    if (exists(`${dir}/memory.memsw.limit_in_bytes`)) {
      swap = String(memory.swap);
    } else if (memory.swap !== -1) {
      throw new UserError(
        `Cannot apply ${LIMIT_FLAGS.swap} "${memory.swap}": swap accounting is not enabled on this host (no memory.memsw.limit_in_bytes in ${dir})`,
      );
    }
  }
  const current = readNumber(`${dir}/memory.limit_in_bytes`) ?? Infinity;
  const swapFirst = swap !== undefined && (memory.swap === -1 || memory.swap! >= current);
  if (swapFirst) writeValue(dir, "memory.memsw.limit_in_bytes", swap!);
  if (limit !== undefined) writeValue(dir, "memory.limit_in_bytes", limit);
  if (swap !== undefined && !swapFirst) writeValue(dir, "memory.memsw.limit_in_bytes", swap);
}

/** Nanoseconds to microseconds. */
function nsToUsec(ns: number | undefined): number | undefined {
  return ns === undefined ? undefined : Math.floor(ns / 1000);
}

/** USER_HZ ticks to microseconds. */
function ticksToUsec(ticks: number | undefined): number | undefined {
  return ticks === undefined ? undefined : ticks * (1_000_000 / USER_HZ);
}

/** A container's v1 cgroup: one directory per controller hierarchy. */
class CgroupV1 implements Cgroup {
  readonly paths: readonly string[];
  readonly procsFiles: readonly string[];
  readonly threadFiles: readonly string[];
  readonly #dirs: ReadonlyMap<string, string>;
  readonly #fs: CgroupFs;

  constructor(dirs: ReadonlyMap<string, string>, fs: CgroupFs) {
    this.#dirs = dirs;
    this.#fs = fs;
    this.paths = [...new Set(dirs.values())];
    this.procsFiles = this.paths.map((dir) => `${dir}/cgroup.procs`);
    this.threadFiles = this.paths.map((dir) => `${dir}/tasks`);
  }

  pids(): number[] {
    return [...new Set(this.procsFiles.flatMap(readPids))];
  }

  stats(): CgroupStats {
    const memory = this.#dirs.get("memory");
    const cpu = this.#dirs.get("cpu");
    const cpuacct = this.#dirs.get("cpuacct");
    const pids = this.#dirs.get("pids");
    const num = (dir: string | undefined, file: string) =>
      dir === undefined ? undefined : readNumber(`${dir}/${file}`);
    const keyed = (dir: string | undefined, file: string) =>
      dir === undefined ? new Map<string, number>() : readKeyed(`${dir}/${file}`);
    const limit = num(memory, "memory.limit_in_bytes");
    const memStat = keyed(memory, "memory.stat");
    const acct = keyed(cpuacct, "cpuacct.stat");
    const cfs = keyed(cpu, "cpu.stat");
    return reported({
      memoryUsage: num(memory, "memory.usage_in_bytes"),
      memoryPeak: num(memory, "memory.max_usage_in_bytes"),
      memoryLimit: limit !== undefined && limit < UNLIMITED_BYTES ? limit : undefined,
      memoryInactiveFile: memStat.get("total_inactive_file"),
      cpuUsageUsec: nsToUsec(num(cpuacct, "cpuacct.usage")),
      cpuUserUsec: ticksToUsec(acct.get("user")),
      cpuSystemUsec: ticksToUsec(acct.get("system")),
      cpuPeriods: cfs.get("nr_periods"),
      cpuThrottledPeriods: cfs.get("nr_throttled"),
      cpuThrottledUsec: nsToUsec(cfs.get("throttled_time")),
      pidsCurrent: num(pids, "pids.current"),
      pidsPeak: num(pids, "pids.peak"),
      oomKills: this.oomKills(),
    });
  }

  oomKills(): number | undefined {
    const memory = this.#dirs.get("memory");
    return memory === undefined
      ? undefined
      : readKeyed(`${memory}/memory.oom_control`).get("oom_kill");
  }

  update(resources: LinuxResources): void {
    for (const need of neededControllers(resources)) {
      if (!this.#dirs.has(need.controller)) {
        throw new UserError(
          `Cannot apply ${need.flag}: the container's cgroup has no ${need.controller} controller`,
        );
      }
    }
    applyResources(this.#dirs, resources);
  }

  updatePids(limit: number): void {
    const dir = this.#dirs.get("pids");
    if (dir === undefined) {
      throw new UserError(
        `Cannot apply ${LIMIT_FLAGS.pids} "${limit}": the pids controller is not mounted on this host`,
      );
    }
    writeValue(dir, "pids.max", pidsMax(limit));
  }

  async freeze(): Promise<void> {
    const dir = this.#freezer();
    try {
      await writeAndWait(
        dir,
        "freezer.state",
        "FROZEN",
        () => this.#state() === "FROZEN",
        "freeze",
      );
    } catch (err) {
      writeValue(dir, "freezer.state", "THAWED"); // not half frozen
      throw err;
    }
  }

  async thaw(): Promise<void> {
    const dir = this.#freezer();
    await writeAndWait(dir, "freezer.state", "THAWED", () => this.#state() === "THAWED", "thaw");
  }

  frozen(): boolean {
    const state = this.#state();
    return state !== undefined && state !== "THAWED";
  }

  /** FROZEN, FREEZING or THAWED; undefined without a freezer. */
  #state(): string | undefined {
    const dir = this.#dirs.get("freezer");
    return dir === undefined ? undefined : readText(`${dir}/freezer.state`)?.trim();
  }

  #freezer(): string {
    const dir = this.#dirs.get("freezer");
    if (dir === undefined) {
      throw new UserError(
        "Cannot pause or unpause: the freezer controller is not mounted on this host (cgroup v1)",
      );
    }
    return dir;
  }

  async destroy(): Promise<void> {
    // A frozen task does not act on SIGKILL until it is thawed.
    if (this.frozen()) writeValue(this.#dirs.get("freezer")!, "freezer.state", "THAWED");
    await killAndRemove(this.paths, this.#fs);
  }
}
