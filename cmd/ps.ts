/** `mini-docker ps`: containers, with Docker's columns. */
import { Command } from "@commander-js/extra-typings";
import { type ContainerState, listStates, stateDir } from "../container/state.ts";
import { cleanupStale } from "../container/lifecycle.ts";
import { humanDuration, tabulate } from "./format.ts";
import { formatPort } from "./publish.ts";
import { publishedPorts } from "./port.ts";
import type { ContainerSpec } from "../base/spec.ts";

/**
 * Docker's PORTS column: the published ports of a running container, then the ports its image or
 * --expose exposes that nothing publishes ("80/tcp").
 */
async function portsText(s: ContainerState): Promise<string> {
  if (s.status !== "running") return "";
  const published = await publishedPorts(s);
  let exposed: string[] = [];
  try {
    const spec: ContainerSpec = JSON.parse(
      Deno.readTextFileSync(`${stateDir(s.id)}/config.json`),
    );
    exposed = spec.network?.exposedPorts ?? [];
  } catch { /* no config */ }
  const shown = new Set(published.map((p) => `${p.containerPort}/${p.protocol}`));
  return [...published.map(formatPort), ...exposed.filter((e) => !shown.has(e))].join(", ");
}

/** Docker's STATUS column: "Up 5 seconds", "Exited (0) 3 seconds ago", "Created". */
export function statusText(s: ContainerState, now = Date.now()): string {
  if (s.status === "running") {
    return `Up ${humanDuration(now - Date.parse(s.startedAt ?? s.created))}`;
  }
  if (s.status === "exited") {
    return `Exited (${s.exitCode ?? 255}) ${
      humanDuration(now - Date.parse(s.finishedAt ?? s.created))
    } ago`;
  }
  return "Created";
}

export function psCommand() {
  return new Command("ps")
    .description("List containers")
    .option("-a, --all", "show all containers (default: running only)")
    .option("-q, --quiet", "only display container ids")
    .option("--no-trunc", "do not truncate ids and commands")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker ps              running containers
  mini-docker ps -a           all containers, with their exit codes
  mini-docker rm $(mini-docker ps -aq)`,
    )
    .action(async (opts) => {
      await cleanupStale();
      const states = listStates().filter((s) => opts.all || s.status === "running");
      const id = (s: ContainerState) => (opts.trunc ? s.id.slice(0, 12) : s.id);
      if (opts.quiet) {
        for (const s of states) console.log(id(s));
        return;
      }
      const rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]];
      for (const s of states) {
        let command = JSON.stringify(s.command.join(" "));
        if (opts.trunc && command.length > 22) command = `${command.slice(0, 19)}…"`;
        rows.push([
          id(s),
          s.imageRef ?? s.rootfs ?? "",
          command,
          `${humanDuration(Date.now() - Date.parse(s.created))} ago`,
          statusText(s),
          await portsText(s),
          s.name,
        ]);
      }
      console.log(tabulate(rows).join("\n"));
    });
}
