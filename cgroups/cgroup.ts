/**
 * The types of the cgroup floor, on their own so that the drivers (`v1.ts`, `v2.ts`) and the
 * factory that picks one (`manager.ts`) all import them from here and never each other.
 * Callers keep importing them from `manager.ts`, which re-exports them.
 */
import type { LinuxResources } from "../base/spec.ts";

/** Host cgroup layout. "hybrid" = v1 controllers plus a cgroup2 mount that holds none of them. */
export type CgroupLayout = "v1" | "v2" | "hybrid";

/** Where cgroupfs is mounted on every distribution we know. */
export const CGROUP_ROOT = "/sys/fs/cgroup";

/** Resource usage read from the cgroup's own files. Absent fields: the host does not report it. */
export interface CgroupStats {
  /** Current memory usage in bytes (v2 memory.current, v1 memory.usage_in_bytes). */
  memoryUsage?: number;
  /** Peak memory usage in bytes (v2 memory.peak, v1 memory.max_usage_in_bytes). */
  memoryPeak?: number;
  /** Memory limit in bytes, undefined when unlimited. */
  memoryLimit?: number;
  /**
   * Page cache on the inactive file list, in bytes (v2 memory.stat `inactive_file`, v1
   * `total_inactive_file`): reclaimable at no cost, so `docker stats` leaves it out of usage.
   */
  memoryInactiveFile?: number;
  /** CPU time in microseconds, total, user and system. */
  cpuUsageUsec?: number;
  cpuUserUsec?: number;
  cpuSystemUsec?: number;
  /** CFS periods, throttled periods and throttled time in microseconds. */
  cpuPeriods?: number;
  cpuThrottledPeriods?: number;
  cpuThrottledUsec?: number;
  /** Current and peak number of tasks. */
  pidsCurrent?: number;
  pidsPeak?: number;
  /** Number of OOM kills in this cgroup (v2 memory.events oom_kill, v1 memory.oom_control). */
  oomKills?: number;
}

/** A container's cgroup, created by a driver. */
export interface Cgroup {
  /** Directories of this cgroup: one on v2, one per controller on v1. */
  readonly paths: readonly string[];
  /** The `cgroup.procs` files that a process's PID is written to, to move it into this cgroup. */
  readonly procsFiles: readonly string[];
  /**
   * v1 only: each hierarchy's `tasks` file. A thread that writes "0" there moves only itself,
   * and without the lock that moving a whole process takes, whose first writer waits for an
   * RCU grace period (5-15 ms). The thread that starts a container joins this way, so that
   * the process it spawns is born inside. v2 has no such file for a domain cgroup.
   */
  readonly threadFiles?: readonly string[];
  /** Host PIDs of the processes in the cgroup. */
  pids(): number[];
  /** Reads usage counters. */
  stats(): CgroupStats;
  /** The number of OOM kills alone (one file: what every container's end reads). */
  oomKills(): number | undefined;
  /**
   * Rewrites `pids.max` of this existing cgroup; `limit` -1 or 0 means "max". The engine
   * creates the cgroup with one slot more than asked (on v1 its starting thread briefly takes
   * one) and lowers it with this once the container's first process exists.
   */
  updatePids(limit: number): void;
  /**
   * Changes the limits of this existing cgroup (`runtime update`): memory, swap, reservation,
   * CPU shares, quota, period, cpuset, pids, as `create` writes them; a limit whose controller
   * this cgroup lacks is a UserError. Device rules are not changed.
   */
  update(resources: LinuxResources): void;
  /**
   * Freezes every process in the cgroup (`pause`: v1 `freezer.state`, v2 `cgroup.freeze`) and
   * resolves once the kernel reports them all frozen. A host without a freezer is a UserError.
   */
  freeze(): Promise<void>;
  /** Thaws a frozen cgroup (`unpause`); resolves once the kernel reports it thawed. */
  thaw(): Promise<void>;
  /** Whether the cgroup is frozen (or freezing). */
  frozen(): boolean;
  /**
   * Kills every process in the cgroup (thawing it first if it is frozen), waits until it is
   * empty, and removes its directories.
   */
  destroy(): Promise<void>;
}

/** A cgroup driver: one per host layout. */
/** How `create` makes a cgroup. */
export interface CreateOptions {
  /**
   * v2 only (the v1 driver refuses it): the controllers are enabled for `resources` and the
   * device rules attached, but the limits are left for `update`. The engine passes through a
   * new container's cgroup to give it a cgroup namespace (container/cgroupns.ts): limits
   * would count, charge and throttle mini-docker itself meanwhile.
   */
  deferLimits?: boolean;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /**
   * Creates the cgroup `<parent>/<name>` and applies `resources`, device rules included (v1 the
   * `devices` controller, v2 a BPF program), before any process is in it. A limit or rule the
   * host cannot apply is a UserError (exit 125) naming it and the reason, and nothing is left
   * behind.
   */
  create(name: string, resources: LinuxResources, options?: CreateOptions): Cgroup;
  /** Opens an existing cgroup (for stats, stop, prune), or undefined when it does not exist. */
  open(name: string): Cgroup | undefined;
  /** Names of the cgroups that exist under the mini-docker parent. */
  list(): string[];
  /**
   * Whether the host accounts swap per cgroup (v1 `memory.memsw.*`, v2 `memory.swap.max`):
   * where it does, a memory limit without `--memory-swap` gets Docker's default of twice the
   * memory limit for memory plus swap.
   */
  swapAccounting(): boolean;
}
