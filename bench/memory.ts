/**
 * Section 3, memory: resident memory of the runtime's own processes while its containers run,
 * per container, with 1 and with N containers. The runtime's processes are the launchers and
 * their descendants outside the containers' PID namespaces (for mini-docker: the `run` process
 * that waits for the container, and its watcher `sh`; for runc and crun: the foreground `run`
 * process). RSS counts shared pages (the Deno binary, libc) in every
 * process; PSS divides them among the processes sharing them, so PSS per container is what
 * one more container costs. Sampled 1 s after the last payload started.
 */
import { finish, launch, waitRunning } from "./fleet.ts";
import { killGroup } from "./proc.ts";
import { descendants, inContainer, killAll, resident } from "./procfs.ts";
import type { Launchers } from "./tools.ts";
import type { Workspace } from "./workspace.ts";

const PAYLOAD = ["/bin/sleep", "600"];

/** One measurement: `containers` running, the runtime's memory per container. */
export interface MemoryRow {
  id: string;
  label: string;
  containers: number;
  /** Runtime processes counted (all containers). */
  processes: number;
  rssPerContainerKiB: number;
  pssPerContainerKiB: number;
  failure?: string;
}

/** Runs the memory section. */
export async function memory(
  ws: Workspace,
  L: Launchers,
  opts: { counts: number[]; log: (line: string) => void },
): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  const tools = [
    { id: "mini-docker", label: "mini-docker run", env: ws.mdEnv },
    { id: "runc", label: "runc run", env: {} },
    { id: "crun", label: "crun run", env: {} },
  ];
  for (const count of opts.counts) {
    for (const tool of tools) {
      const argvs: string[][] = [];
      for (let i = 0; i < count; i++) {
        const id = `m${tool.id.slice(0, 2)}-${count}-${i}`;
        if (tool.id === "mini-docker") argvs.push(L.miniDocker(PAYLOAD));
        else if (tool.id === "runc") argvs.push(L.runc(id, await ws.bundle(id, { args: PAYLOAD })));
        else argvs.push(L.crun(id, await ws.bundle(id, { args: PAYLOAD })));
      }
      const fleet = launch(argvs, tool.env, `${ws.dir}/logs`);
      let row: MemoryRow;
      let payloads: number[] = [];
      try {
        const running = await waitRunning(fleet, PAYLOAD, count, { timeoutMs: 180_000 });
        if (running.missed > 0) {
          throw new Error(`${running.missed} of ${count} payloads ended early`);
        }
        payloads = running.pids;
        await new Promise((r) => setTimeout(r, 1000));
        const own = descendants(fleet.pids).filter((pid) => !inContainer(pid));
        let rss = 0;
        let pss = 0;
        for (const pid of own) {
          const r = resident(pid);
          rss += r.rssKiB;
          pss += r.pssKiB;
        }
        row = {
          id: tool.id,
          label: tool.label,
          containers: count,
          processes: own.length,
          rssPerContainerKiB: rss / count,
          pssPerContainerKiB: pss / count,
        };
      } catch (err) {
        row = {
          id: tool.id,
          label: tool.label,
          containers: count,
          processes: 0,
          rssPerContainerKiB: NaN,
          pssPerContainerKiB: NaN,
          failure: (err as Error).message,
        };
        fleet.pids.forEach(killGroup);
      }
      // The payloads die; each runtime then cleans up and exits as after a normal run.
      killAll(payloads);
      const end = await finish(fleet, { timeoutMs: 60_000, okCodes: [0, 137] });
      if (row.failure === undefined && end.failures.length > 0) row.failure = end.failures[0];
      rows.push(row);
      opts.log(
        `memory: ${tool.label} x${count}: ${
          row.failure ?? `PSS ${(row.pssPerContainerKiB / 1024).toFixed(1)} MiB per container`
        }`,
      );
    }
  }
  return rows;
}
