/**
 * The resource side of `run`: Docker's limit flags, with Docker's names, units and rules, turned
 * into OCI `LinuxResources` before any work (`resourcesFromFlags`); and `--stats-report`, the
 * end-of-run summary read from the container's cgroup just before it is removed.
 */
import { type LinuxResources, swapProblem } from "../base/spec.ts";
import { UserError } from "../base/errors.ts";
import {
  bytesSize,
  MIN_MEMORY,
  parseCpus,
  parseCpuset,
  parseCpuShares,
  parseMemory,
  parsePidsLimit,
} from "./units.ts";
import { type Cgroup, cgroupDriver, type CgroupStats } from "../cgroups/manager.ts";

/** The flags `resourcesFromFlags` reads, as commander gives them (strings, unparsed). */
export interface ResourceFlags {
  memory?: string;
  cpus?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
}

/** What the flags are checked against; read lazily (only what a flag needs). */
export interface HostResources {
  /** CPUs this process may use (the upper bound of --cpus). */
  cpuCount(): number;
  /** Online CPUs in the kernel's list format ("0-1"). */
  onlineCpus(): string;
  /** Online memory nodes ("0"). */
  onlineMems(): string;
  /** Whether the cgroups account swap (see CgroupDriver.swapAccounting). */
  swapAccounting(): boolean;
}

function readOr(path: string, fallback: string): string {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return fallback;
  }
}

/** This machine. */
export function thisHost(): HostResources {
  return {
    cpuCount: () => navigator.hardwareConcurrency,
    onlineCpus: () =>
      readOr("/sys/devices/system/cpu/online", `0-${navigator.hardwareConcurrency - 1}`),
    // A kernel without NUMA has no node directory: its one memory node is 0.
    onlineMems: () => readOr("/sys/devices/system/node/online", "0"),
    swapAccounting: () => cgroupDriver().swapAccounting(),
  };
}

/** `--memory-swap`: a size, or -1 for unlimited swap. 0 means "not set", as in Docker. */
function parseSwap(text: string): number | undefined {
  if (text.trim() === "-1") return -1;
  const bytes = parseMemory(text);
  return bytes === 0 ? undefined : bytes;
}

/** A memory size where 0 means "not set", as in Docker. */
function parseOptionalMemory(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const bytes = parseMemory(text);
  return bytes === 0 ? undefined : bytes;
}

/**
 * Turns the resource flags into OCI resources, with Docker's rules (daemon/daemon_unix.go):
 * --memory and --memory-reservation at least 6 MiB; --memory-swap (memory plus swap) needs
 * --memory and is at least --memory, -1 lifts the swap limit, and when unset the container gets
 * as much swap as memory (2 x --memory) where the host accounts swap. Unlike Docker, which drops
 * a swap limit it cannot apply with a warning, mini-docker refuses it.
 */
export function resourcesFromFlags(
  opts: ResourceFlags,
  host: HostResources = thisHost(),
): LinuxResources {
  const resources: LinuxResources = {};

  const limit = parseOptionalMemory(opts.memory);
  if (limit !== undefined && limit < MIN_MEMORY) {
    throw new UserError(`Invalid --memory "${opts.memory}": minimum memory limit allowed is 6MB`);
  }
  const reservation = parseOptionalMemory(opts.memoryReservation);
  if (reservation !== undefined && reservation < MIN_MEMORY) {
    throw new UserError(
      `Invalid --memory-reservation "${opts.memoryReservation}": minimum memory reservation allowed is 6MB`,
    );
  }
  if (reservation !== undefined && limit !== undefined && limit < reservation) {
    throw new UserError(
      `Invalid --memory-reservation "${opts.memoryReservation}": minimum memory limit can not be less than memory reservation limit (--memory "${opts.memory}")`,
    );
  }
  let swap = opts.memorySwap === undefined ? undefined : parseSwap(opts.memorySwap);
  if (swap !== undefined && swap !== -1) {
    const problem = swapProblem({ limit, swap }, { swap: opts.memorySwap, memory: opts.memory });
    if (problem !== undefined) throw new UserError(problem);
    if (!host.swapAccounting()) {
      throw new UserError(
        `Cannot apply --memory-swap "${opts.memorySwap}": swap accounting is not enabled on this host (boot the kernel with swapaccount=1)`,
      );
    }
  }
  if (swap === undefined && limit !== undefined && host.swapAccounting()) swap = 2 * limit;
  if (limit !== undefined || reservation !== undefined || swap !== undefined) {
    resources.memory = {
      ...(limit !== undefined && { limit }),
      ...(reservation !== undefined && { reservation }),
      ...(swap !== undefined && { swap }),
    };
  }

  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  if (opts.cpus !== undefined) Object.assign(cpu, parseCpus(opts.cpus, host.cpuCount()));
  const shares = opts.cpuShares === undefined ? undefined : parseCpuShares(opts.cpuShares);
  if (shares !== undefined) cpu.shares = shares;
  if (opts.cpusetCpus !== undefined) {
    cpu.cpus = parseCpuset(opts.cpusetCpus, host.onlineCpus(), {
      flag: "--cpuset-cpus",
      unit: "CPU",
    });
  }
  if (opts.cpusetMems !== undefined) {
    cpu.mems = parseCpuset(opts.cpusetMems, host.onlineMems(), {
      flag: "--cpuset-mems",
      unit: "memory node",
    });
  }
  if (Object.keys(cpu).length > 0) resources.cpu = cpu;

  if (opts.pidsLimit !== undefined) resources.pids = { limit: parsePidsLimit(opts.pidsLimit) };
  return resources;
}

/** Who the report is about. */
export interface ReportSubject {
  id: string;
  name: string;
}

const seconds = (usec: number) => `${(usec / 1e6).toFixed(2)} s`;

/**
 * The end-of-run summary, a few aligned lines: what the cgroup's own counters say, "n/a" where
 * the kernel keeps no such counter (v1 before pids.peak, v2 before memory.peak).
 */
export function formatStatsReport(
  stats: CgroupStats,
  resources: LinuxResources,
  who: ReportSubject,
): string {
  const na = "n/a";
  const memLimit = resources.memory?.limit;
  const memory = stats.memoryPeak === undefined
    ? na
    : `${bytesSize(stats.memoryPeak)}${
      memLimit === undefined ? " (no limit)" : ` of ${bytesSize(memLimit)} limit`
    }`;
  const cpu = stats.cpuUserUsec === undefined || stats.cpuSystemUsec === undefined
    ? (stats.cpuUsageUsec === undefined ? na : `${seconds(stats.cpuUsageUsec)} in all`)
    : `${seconds(stats.cpuUserUsec)} user, ${seconds(stats.cpuSystemUsec)} system`;
  const throttled = resources.cpu?.quota === undefined
    ? "none (no --cpus limit)"
    : stats.cpuThrottledPeriods === undefined || stats.cpuPeriods === undefined
    ? na
    : `${stats.cpuThrottledPeriods} of ${stats.cpuPeriods} periods, ${
      seconds(stats.cpuThrottledUsec ?? 0)
    }`;
  const pidsLimit = resources.pids?.limit;
  const pids = stats.pidsPeak === undefined
    ? na
    : `${stats.pidsPeak}${
      pidsLimit === undefined || pidsLimit <= 0 ? "" : ` of ${pidsLimit} limit`
    }`;
  const rows: [string, string][] = [
    ["memory peak", memory],
    ["CPU time", cpu],
    ["CPU throttled", throttled],
    ["PIDs peak", pids],
    ["OOM kills", stats.oomKills === undefined ? na : String(stats.oomKills)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return [
    `mini-docker: resources used by container ${who.name} (${who.id.slice(0, 12)}):`,
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}${value}`),
  ].join("\n");
}

/**
 * The `beforeCleanup` hook of `--stats-report`: prints the summary to stderr (stdout belongs
 * to the container's output). A cgroup whose counters cannot be read prints that instead.
 */
export function statsReporter(
  resources: LinuxResources,
): (cgroup: Cgroup, who: ReportSubject) => void {
  return (cgroup, who) => {
    let stats: CgroupStats;
    try {
      stats = cgroup.stats();
    } catch (err) {
      console.error(
        `mini-docker: no resource report for ${who.name}: cannot read its cgroup: ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
      return;
    }
    console.error(formatStatsReport(stats, resources, who));
  };
}
