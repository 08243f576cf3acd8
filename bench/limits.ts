/**
 * Section 4, limits: how closely `--cpus 0.5` holds a busy loop to half a CPU, from the
 * container's own cgroup CPU counter (cpuacct.usage on v1, cpu.stat usage_usec on v2) read
 * twice, `seconds` apart, while the loop runs; and, from the start-up rows, what a memory limit
 * adds to start-up (median with minus median without).
 */
import { cgroupDriver } from "../cgroups/manager.ts";
import { finish, launch, waitRunning } from "./fleet.ts";
import { killGroup } from "./proc.ts";
import { killAll } from "./procfs.ts";
import type { StartupRow } from "./startup.ts";
import type { Launchers } from "./tools.ts";
import type { Workspace } from "./workspace.ts";

const PAYLOAD = ["/bin/sh", "-c", "while :; do :; done"];
const CPUS = 0.5;

/** One tool's CPU-limit measurement. */
export interface CpuLimitRow {
  id: string;
  label: string;
  limitCpus: number;
  /** CPU used per second of wall time over the window. */
  measuredCpus: number;
  /** measured / limit - 1 (0 = exact). */
  error: number;
  windowS: number;
  /** CFS periods in which the cgroup was throttled / all periods, over the window. */
  throttledShare?: number;
  failure?: string;
}

/** A memory limit's cost at start-up. */
export interface MemoryLimitRow {
  id: string;
  label: string;
  withoutMs: number;
  withMs: number;
  overheadMs: number;
}

/** Runs the CPU-limit measurements. */
export async function cpuLimit(
  ws: Workspace,
  L: Launchers,
  opts: { seconds: number; log: (line: string) => void },
): Promise<CpuLimitRow[]> {
  const tools = [
    { id: "mini-docker", label: "mini-docker run --cpus 0.5" },
    { id: "runc", label: "runc run, quota 50000/100000" },
    { id: "crun", label: "crun run, quota 50000/100000" },
  ];
  const rows: CpuLimitRow[] = [];
  for (const tool of tools) {
    const id = `limit-${tool.id}`;
    const argv = tool.id === "mini-docker"
      ? L.miniDocker(PAYLOAD, ["--cpus", String(CPUS)])
      : tool.id === "runc"
      ? L.runc(id, await ws.bundle(id, { args: PAYLOAD, cpus: CPUS }))
      : L.crun(id, await ws.bundle(id, { args: PAYLOAD, cpus: CPUS }));
    const fleet = launch([argv], tool.id === "mini-docker" ? ws.mdEnv : {}, `${ws.dir}/logs`);
    let row: CpuLimitRow;
    let payloads: number[] = [];
    try {
      const running = await waitRunning(fleet, PAYLOAD, 1, { timeoutMs: 60_000 });
      if (running.missed > 0) throw new Error("the busy loop ended early");
      payloads = running.pids;
      // mini-docker's cgroup is <parent>/<container id>: the one its busy loop is in (other
      // sections may have left some under the parent, which its next runs clean up).
      const driver = tool.id === "mini-docker"
        ? cgroupDriver({ parent: ws.mdEnv.MINI_DOCKER_CGROUP_PARENT })
        : cgroupDriver({ parent: ws.cgroupTag });
      const name = tool.id === "mini-docker" ? cgroupNameOf(payloads[0]!) : id;
      const cgroup = name === undefined ? undefined : driver.open(name);
      if (cgroup === undefined) throw new Error(`cannot find the cgroup of ${tool.label}`);
      // Let the loop reach its steady state, then read the counter twice.
      await new Promise((r) => setTimeout(r, 300));
      const a = cgroup.stats();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, opts.seconds * 1000));
      const b = cgroup.stats();
      const windowS = (performance.now() - t0) / 1000;
      if (a.cpuUsageUsec === undefined || b.cpuUsageUsec === undefined) {
        throw new Error("the cgroup reports no CPU usage");
      }
      const measuredCpus = (b.cpuUsageUsec - a.cpuUsageUsec) / 1e6 / windowS;
      const periods = (b.cpuPeriods ?? 0) - (a.cpuPeriods ?? 0);
      row = {
        id: tool.id,
        label: tool.label,
        limitCpus: CPUS,
        measuredCpus,
        error: measuredCpus / CPUS - 1,
        windowS,
        throttledShare: periods > 0
          ? ((b.cpuThrottledPeriods ?? 0) - (a.cpuThrottledPeriods ?? 0)) / periods
          : undefined,
      };
    } catch (err) {
      row = {
        id: tool.id,
        label: tool.label,
        limitCpus: CPUS,
        measuredCpus: NaN,
        error: NaN,
        windowS: 0,
        failure: (err as Error).message,
      };
      fleet.pids.forEach(killGroup);
    }
    killAll(payloads);
    const end = await finish(fleet, { timeoutMs: 60_000, okCodes: [0, 137] });
    if (row.failure === undefined && end.failures.length > 0) row.failure = end.failures[0];
    rows.push(row);
    opts.log(
      `limits: ${tool.label}: ${
        row.failure ?? `${row.measuredCpus.toFixed(3)} CPUs over ${row.windowS.toFixed(1)} s`
      }`,
    );
  }
  return rows;
}

/** Start-up cost of a memory limit, for each tool that has a "-mem" row. */
export function memoryLimitOverhead(rows: StartupRow[]): MemoryLimitRow[] {
  const out: MemoryLimitRow[] = [];
  for (const row of rows) {
    const mem = rows.find((r) => r.id === `${row.id}-mem`);
    if (mem === undefined || row.failure !== undefined || mem.failure !== undefined) continue;
    out.push({
      id: row.id,
      label: row.label,
      withoutMs: row.wallMs.median,
      withMs: mem.wallMs.median,
      overheadMs: mem.wallMs.median - row.wallMs.median,
    });
  }
  return out;
}

/** The last component of the cgroup path of process `pid` (v2, or v1's cpuacct hierarchy). */
function cgroupNameOf(pid: number): string | undefined {
  const lines = Deno.readTextFileSync(`/proc/${pid}/cgroup`).trim().split("\n");
  const line = lines.find((l) => /^\d+:[^:]*\bcpuacct\b[^:]*:/.test(l)) ??
    lines.find((l) => l.startsWith("0::"));
  return line?.split(":").slice(2).join(":").split("/").pop() || undefined;
}
