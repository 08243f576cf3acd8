/**
 * `mini-docker stats [CONTAINER...]`: the resource usage of running containers, read from their
 * cgroups and /proc, refreshed every second like `docker stats`. Containers are found on disk
 * (state.json), so it shows containers started by any mini-docker process.
 *
 * CPU % is cgroup CPU time over wall time between two readings (100% = one CPU, as Docker);
 * MEM USAGE leaves out the inactive page cache (as Docker); NET I/O is the container's own
 * network namespace, without loopback ("--" when it shares the host's network).
 */
import { Command } from "@commander-js/extra-typings";
import { UserError } from "../base/errors.ts";
import { type ContainerState, listStates, matchContainer } from "../container/state.ts";
import { bytesSize, humanSize } from "./units.ts";
import { type CgroupDriver, cgroupDriver, type CgroupStats } from "../cgroups/manager.ts";

const EXAMPLES = `
Examples:
  mini-docker stats                              every running container, refreshed each second
  mini-docker stats --no-stream web              one snapshot of the container named web
  mini-docker stats --no-stream --format json    one JSON object per container and line

CPU % counts one CPU as 100%. NET I/O is "--" for containers on the host's network.`;

/** The delay between the two readings of the first snapshot (CPU % needs two). */
export const FIRST_SAMPLE_MS = 500;
/** The refresh period of the live table. */
export const REFRESH_MS = 1000;

/** One container's usage at one moment; undefined fields are unknown ("--"). */
export interface StatsRow {
  id: string;
  name: string;
  cpuPercent?: number;
  memUsage?: number;
  memLimit?: number;
  memPercent?: number;
  /** Bytes received and sent on the container's interfaces; undefined on the host network. */
  netRx?: number;
  netTx?: number;
  pids?: number;
}

/** Finds each referenced container (see matchContainer). */
export function matchContainers(refs: readonly string[], states: readonly ContainerState[]) {
  return refs.map((ref) => matchContainer(ref, states));
}

/** Total memory of the host: the "limit" of a container without one, as in Docker. */
function hostMemory(): number {
  const kb = /^MemTotal:\s+(\d+) kB/m.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1];
  return Number(kb ?? 0) * 1024;
}

/**
 * Received and sent bytes summed over the interfaces of /proc/<pid>/net/dev, loopback left
 * out (as Docker counts only the container's own interfaces). Undefined when the process
 * shares this process's network namespace (--network host) or is gone.
 */
export function netIO(pid: number): { rx: number; tx: number } | undefined {
  try {
    if (Deno.readLinkSync(`/proc/${pid}/ns/net`) === Deno.readLinkSync("/proc/self/ns/net")) {
      return undefined;
    }
    return parseNetDev(Deno.readTextFileSync(`/proc/${pid}/net/dev`));
  } catch {
    return undefined;
  }
}

/** Parses /proc/net/dev: "  eth0: rxbytes packets ... (8 fields) txbytes ...". */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0 || line.slice(0, colon).trim() === "lo") continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    rx += fields[0] ?? 0;
    tx += fields[8] ?? 0;
  }
  return { rx, tx };
}

/** Usage as `docker stats` shows it: the memory in use minus the inactive page cache. */
export function memoryInUse(stats: CgroupStats): number | undefined {
  if (stats.memoryUsage === undefined) return undefined;
  const cache = stats.memoryInactiveFile ?? 0;
  return cache < stats.memoryUsage ? stats.memoryUsage - cache : stats.memoryUsage;
}

/** CPU % between two readings: CPU time over wall time, 100% per CPU. */
export function cpuPercent(usecDelta: number, wallMsDelta: number): number {
  return wallMsDelta <= 0 ? 0 : Math.max(0, usecDelta / (wallMsDelta * 1000)) * 100;
}

/** Reads containers' cgroups, remembering each one's last CPU reading for the next CPU %. */
export class StatsSampler {
  readonly #previous = new Map<string, { usec: number; at: number }>();
  readonly #drivers = new Map<string, CgroupDriver>();
  readonly #hostMemory = hostMemory();

  /** The cgroup of a container, undefined when it has none (it has ended). */
  #cgroup(state: ContainerState) {
    const slash = state.cgroupsPath.lastIndexOf("/");
    const parent = state.cgroupsPath.slice(0, slash);
    let driver = this.#drivers.get(parent);
    if (driver === undefined) {
      driver = cgroupDriver({ parent });
      this.#drivers.set(parent, driver);
    }
    return driver.open(state.cgroupsPath.slice(slash + 1));
  }

  /** One row for the container; CPU % only from the second reading on. */
  sample(state: ContainerState): StatsRow {
    const row: StatsRow = { id: state.id, name: state.name };
    if (state.status !== "running") return row;
    let stats: CgroupStats;
    try {
      const cgroup = this.#cgroup(state);
      if (cgroup === undefined) return row;
      stats = cgroup.stats();
    } catch {
      return row; // Removed between the listing and the reading.
    }
    const now = performance.now();
    const previous = this.#previous.get(state.id);
    if (stats.cpuUsageUsec !== undefined) {
      if (previous !== undefined) {
        row.cpuPercent = cpuPercent(stats.cpuUsageUsec - previous.usec, now - previous.at);
      }
      this.#previous.set(state.id, { usec: stats.cpuUsageUsec, at: now });
    }
    row.memUsage = memoryInUse(stats);
    row.memLimit = Math.min(stats.memoryLimit ?? Infinity, this.#hostMemory);
    if (row.memUsage !== undefined && row.memLimit > 0) {
      row.memPercent = (row.memUsage / row.memLimit) * 100;
    }
    const pid = state.process?.pid;
    const net = pid === undefined ? undefined : netIO(pid);
    row.netRx = net?.rx;
    row.netTx = net?.tx;
    row.pids = stats.pidsCurrent;
    return row;
  }
}

const percent = (value: number | undefined) => value === undefined ? "--" : `${value.toFixed(2)}%`;

/** The table's cells for one row, as `docker stats` prints them. */
export function cells(row: StatsRow) {
  return {
    ID: row.id.slice(0, 12),
    Name: row.name,
    CPUPerc: percent(row.cpuPercent),
    MemUsage: row.memUsage === undefined || row.memLimit === undefined
      ? "-- / --"
      : `${bytesSize(row.memUsage)} / ${bytesSize(row.memLimit)}`,
    MemPerc: percent(row.memPercent),
    NetIO: row.netRx === undefined || row.netTx === undefined
      ? "--"
      : `${humanSize(row.netRx)} / ${humanSize(row.netTx)}`,
    PIDs: row.pids === undefined ? "--" : String(row.pids),
  };
}

const HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "PIDS"];

/**
 * The table, laid out as Docker's tabwriter does (minimum width 10, padding 3): every column
 * but the last padded to its widest cell plus 3.
 */
export function formatTable(rows: readonly StatsRow[]): string {
  const lines = [HEADERS, ...rows.map((row) => Object.values(cells(row)))];
  const widths = HEADERS.map((_, i) =>
    Math.max(10, ...lines.map((line) => [...line[i]!].length + 3))
  );
  return lines
    .map((line) =>
      line.map((cell, i) => i === line.length - 1 ? cell : cell.padEnd(widths[i]!)).join("")
    )
    .join("\n") + "\n";
}

/** One JSON line: Docker's `--format json` fields, plus the raw numbers for scripts. */
export function formatJson(row: StatsRow): string {
  const num = (value: number | undefined) => value ?? null;
  return JSON.stringify({
    ...cells(row),
    CPUPercent: num(row.cpuPercent),
    MemUsageBytes: num(row.memUsage),
    MemLimitBytes: num(row.memLimit),
    MemPercent: num(row.memPercent),
    NetRxBytes: num(row.netRx),
    NetTxBytes: num(row.netTx),
    PIDsCurrent: num(row.pids),
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The `stats` command. */
export function statsCommand() {
  return new Command("stats")
    .description("Display a live stream of containers' resource usage")
    .usage("[options] [CONTAINER...]")
    .argument("[containers...]", "container names or ids (default: every running container)")
    .option("--no-stream", "print one snapshot and exit")
    .option("--format <format>", 'output format: "table" or "json" (one object per line)', "table")
    .addHelpText("after", EXAMPLES)
    .action(async (refs, opts) => {
      if (opts.format !== "table" && opts.format !== "json") {
        throw new UserError(`Invalid format "${opts.format}": use "table" or "json"`);
      }
      // Named containers are resolved once (an unknown name fails now); without names, the
      // running containers are listed again at every refresh, as Docker does.
      const named = refs.length === 0 ? undefined : matchContainers(refs, listStates());
      const containers = () => {
        const states = listStates();
        if (named === undefined) return states.filter((s) => s.status === "running");
        // A named container that is gone keeps its row, without numbers.
        return named.map((n) =>
          states.find((s) => s.id === n.id) ?? { ...n, status: "exited" as const }
        );
      };
      const sampler = new StatsSampler();
      const snapshot = () => containers().map((state) => sampler.sample(state));
      const write = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text));
      const show = (rows: StatsRow[], redraw: boolean) => {
        const body = opts.format === "json"
          ? rows.map((row) => formatJson(row) + "\n").join("")
          : formatTable(rows);
        // A terminal gets the table redrawn in place; a pipe gets one table after another.
        write(redraw ? `\x1b[2J\x1b[H${body}` : body);
      };

      snapshot();
      await sleep(FIRST_SAMPLE_MS);
      if (!opts.stream) {
        show(snapshot(), false);
        return;
      }
      const redraw = opts.format === "table" && Deno.stdout.isTerminal();
      for (;;) {
        show(snapshot(), redraw);
        await sleep(REFRESH_MS);
      }
    });
}
