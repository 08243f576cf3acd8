/** `mini-docker port`: the published ports of a running container, as `docker port` prints them. */
import { Command } from "@commander-js/extra-typings";
import { UserError } from "../base/errors.ts";
import type { PortMapping } from "../base/spec.ts";
import { type ContainerState, findContainer } from "../container/state.ts";
import { isRunning } from "../container/lifecycle.ts";
import { networks } from "../container/start.ts";
import { runRoot } from "../base/paths.ts";

/** The published ports of a container (none once it has ended: its network is gone). */
export async function publishedPorts(state: ContainerState): Promise<PortMapping[]> {
  if (!isRunning(state)) return [];
  try {
    Deno.statSync(`${runRoot()}/networks`); // never a network on this host: nothing to load
  } catch {
    return [];
  }
  return (await networks()).readRecord(state.id)?.ports ?? [];
}

export function portCommand() {
  return new Command("port")
    .description("List a container's published ports, or the host address of one")
    .argument("<container>", "container name or id")
    .argument("[port]", "a container port, PORT or PORT/PROTO (default tcp)")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker port web              80/tcp -> 0.0.0.0:8080
  mini-docker port web 80           0.0.0.0:8080`,
    )
    .action(async (ref, port) => {
      const state = findContainer(ref);
      const ports = await publishedPorts(state);
      const host = (p: PortMapping) => `${p.hostIp || "0.0.0.0"}:${p.hostPort}`;
      if (port === undefined) {
        for (const p of ports) console.log(`${p.containerPort}/${p.protocol} -> ${host(p)}`);
        return;
      }
      const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(port);
      if (m === null) {
        throw new UserError(`Invalid port "${port}": expected PORT or PORT/PROTO, such as 80/tcp`);
      }
      const protocol = m[2] ?? "tcp";
      const found = ports.filter((p) =>
        p.containerPort === Number(m[1]) && p.protocol === protocol
      );
      if (found.length === 0) {
        throw new UserError(`No public port "${m[1]}/${protocol}" published for ${state.name}`);
      }
      for (const p of found) console.log(host(p));
    });
}
