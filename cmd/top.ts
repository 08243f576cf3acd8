/**
 * `top CONTAINER [ps OPTIONS]`: the processes of a container as the host's ps(1) shows them, as
 * Docker does it: ps runs on the host (default `-ef`), and its lines are those whose PID is in
 * the container's cgroup.
 */
import { Command } from "@commander-js/extra-typings";
import { findContainer } from "../container/state.ts";
import { isRunning } from "../container/lifecycle.ts";
import { runProgram } from "../container/start.ts";
import { cgroupDriver } from "../cgroups/manager.ts";
import { EXIT_FAILURE, UserError } from "../base/errors.ts";
import { tabulate } from "./format.ts";

/** Docker's `top` table: columns at least 20 wide, 3 spaces apart. */
const TOP_MIN_WIDTH = 20;

/** The ps(1) of the host: procps in Debian. */
function psProgram(): string {
  for (const path of ["/usr/bin/ps", "/bin/ps"]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  throw new UserError('top needs ps(1) on the host: install it with "apt-get install procps"');
}

/**
 * ps's output cut into rows of the processes in `pids`: its header gives the columns, the last
 * one (the command) keeps its spaces. A ps without a PID column is an error, as Docker's.
 */
export function psRows(output: string, pids: ReadonlySet<number>): string[][] {
  const [header, ...lines] = output.split("\n").filter((l) => l.trim() !== "");
  if (header === undefined) throw new UserError("ps printed nothing", EXIT_FAILURE);
  const titles = header.trim().split(/\s+/);
  const pidAt = titles.indexOf("PID");
  if (pidAt < 0) {
    throw new UserError(`Cannot find the PID field in ps's output: ${header.trim()}`, EXIT_FAILURE);
  }
  const rows = lines.map((line) => {
    const fields = line.trim().split(/\s+/);
    return [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(" ")];
  });
  return [titles, ...rows.filter((r) => pids.has(Number(r[pidAt])))];
}

export function topCommand() {
  return new Command("top")
    .description("Show the processes of a running container (the host's ps)")
    .usage("[options] CONTAINER [ps OPTIONS]")
    .argument("<container>", "container name or id (unique prefixes work)")
    .argument("[ps-options...]", "options of ps(1) (default -ef)")
    .passThroughOptions()
    .addHelpText(
      "after",
      `
Examples:
  mini-docker top web
  mini-docker top web -o pid,rss,args`,
    )
    .action(async (ref, psArgs) => {
      const state = findContainer(ref);
      if (!isRunning(state)) {
        throw new UserError(`Container ${state.name} is not running`, EXIT_FAILURE);
      }
      const cgroup = cgroupDriver().open(state.cgroupsPath.split("/").pop()!);
      const pids = new Set(cgroup?.pids() ?? [state.process!.pid]);
      const out = await runProgram(psProgram(), psArgs.length > 0 ? psArgs : ["-ef"], {
        env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"],
        stdin: "",
      });
      if (out.code !== 0) {
        throw new UserError(`ps failed: ${out.stderr.trim() || `exit ${out.code}`}`, EXIT_FAILURE);
      }
      for (const line of tabulate(psRows(out.stdout, pids), TOP_MIN_WIDTH)) console.log(line);
    });
}
