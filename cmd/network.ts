/**
 * `mini-docker network`: create, list, inspect and remove networks, and connect or disconnect
 * running containers, with Docker's options and output shapes.
 */
import { Command } from "@commander-js/extra-typings";
import { UserError } from "../base/errors.ts";
import {
  createNetwork,
  DEFAULT_NETWORK,
  defaultNetwork,
  findNetwork,
  listNetworks,
  type NetworkDef,
} from "../network/store.ts";
import { findContainer, stateDir } from "../container/state.ts";
import { isRunning } from "../container/lifecycle.ts";
import { hostResolvConf, networks } from "../container/start.ts";
import { resolvConf } from "../network/etc.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { TABLE_MIN_WIDTH, tabulate } from "./format.ts";
import { inspectTemplate } from "./template.ts";
import { eachContainer } from "./each.ts";
import { confirm } from "./prompt.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

/** Docker's pre-defined networks that are modes, not stored networks: fixed ids. */
const MODES: Record<string, { id: string; driver: string }> = {
  host: { id: "a3f1c8e25b7d4f6e9c0b1a2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f", driver: "host" },
  none: { id: "5e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d", driver: "null" },
};

/** Docker's `network inspect` object for a network. */
async function inspectNetwork(def: NetworkDef): Promise<Record<string, unknown>> {
  const containers: Record<string, unknown> = {};
  for (const r of (await networks()).listRecords()) {
    if (r.keeper) continue;
    for (const e of r.endpoints) {
      if (e.network.id !== def.id) continue;
      containers[r.containerId] = {
        Name: r.containerName,
        EndpointID: "",
        MacAddress: e.mac ?? "",
        IPv4Address: `${e.ip}/${def.subnet.split("/")[1]}`,
        IPv6Address: "",
      };
    }
  }
  return {
    Name: def.name,
    Id: def.id,
    Created: def.created,
    Scope: "local",
    Driver: def.driver,
    EnableIPv6: false,
    IPAM: {
      Driver: "default",
      Options: {},
      Config: [{ Subnet: def.subnet, Gateway: def.gateway }],
    },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: containers,
    Options: {
      "com.docker.network.bridge.name": def.bridge,
      ...(def.name === DEFAULT_NETWORK && { "com.docker.network.bridge.default_bridge": "true" }),
    },
    Labels: {},
  };
}

function inspectMode(name: string): Record<string, unknown> {
  return {
    Name: name,
    Id: MODES[name]!.id,
    Created: "",
    Scope: "local",
    Driver: MODES[name]!.driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
  };
}

/**
 * Points the container's /etc/resolv.conf (a file of its directory, bind-mounted: rewritten in
 * place) at the DNS server of one of its networks that has one, else at the host's servers, so
 * that names resolve after `network connect` and `disconnect` as they do on a run's network.
 */
async function updateResolvConf(id: string, spec: ContainerSpec): Promise<void> {
  const record = (await networks()).readRecord(id);
  const dns = record?.endpoints.find((e) => e.network.dns && e.state === "up");
  const path = `${stateDir(id)}/resolv.conf`;
  const net = dns === undefined
    ? { ip: record?.endpoints[0]?.ip ?? "", gateway: "", dns: false }
    : { ip: dns.ip, gateway: dns.network.gateway, dns: true };
  const text = resolvConf(hostResolvConf(), spec.network, net);
  if (Deno.readTextFileSync(path) !== text) Deno.writeTextFileSync(path, text);
}

/** The running container `ref`, with its spec. */
function runningContainer(ref: string) {
  const state = findContainer(ref);
  if (!isRunning(state)) {
    throw new UserError(`Container ${state.name} (${state.id.slice(0, 12)}) is not running`);
  }
  const spec: ContainerSpec = JSON.parse(
    Deno.readTextFileSync(`${stateDir(state.id)}/config.json`),
  );
  return { state, spec };
}

function createCommand() {
  return new Command("create")
    .description("Create a network (a bridge with its own subnet and DNS)")
    .argument("<name>", "the network's name")
    .option("-d, --driver <driver>", "the network driver: bridge only", "bridge")
    .option("--subnet <cidr>", "its IPv4 subnet, e.g. 10.5.0.0/24 (default: the next free one)")
    .option("--gateway <ip>", "the host's address on it (default: the subnet's first)")
    .addHelpText(
      "after",
      `
Containers on a network created here resolve each other by name, by --network-alias and by
host name (its DNS server answers on the gateway). The bridge (br-<id>) appears with the
network's first container and stays until "network rm".

Examples:
  mini-docker network create app
  mini-docker network create --subnet 10.5.0.0/24 --gateway 10.5.0.254 app2`,
    )
    .action((name, opts) => {
      if (opts.driver !== "bridge") {
        throw new UserError(`Invalid --driver "${opts.driver}": only "bridge" is supported`);
      }
      console.log(createNetwork({ name, subnet: opts.subnet, gateway: opts.gateway }).id);
    });
}

function lsCommand() {
  return new Command("ls")
    .alias("list")
    .description("List networks")
    .option("-q, --quiet", "only display network ids")
    .option("--no-trunc", "do not truncate the ids")
    .action((opts) => {
      const id = (full: string) => (opts.trunc ? full.slice(0, 12) : full);
      const rows = [
        ...[defaultNetwork(), ...listNetworks().filter((n) => n.name !== DEFAULT_NETWORK)].map((
          n,
        ) => [id(n.id), n.name, n.driver, "local"]),
        ...Object.entries(MODES).map(([name, m]) => [id(m.id), name, m.driver, "local"]),
      ].sort((a, b) => a[1]!.localeCompare(b[1]!));
      if (opts.quiet) {
        for (const r of rows) console.log(r[0]);
        return;
      }
      console.log(
        tabulate([["NETWORK ID", "NAME", "DRIVER", "SCOPE"], ...rows], TABLE_MIN_WIDTH).join("\n"),
      );
    });
}

function inspectCommand() {
  return new Command("inspect")
    .description("Show networks as JSON: subnet, gateway, bridge, containers")
    .argument("<network...>", "network names or ids")
    .option("-f, --format <template>", "a template such as '{{.IPAM.Config}}'")
    .action(async (refs, opts) => {
      const template = opts.format === undefined ? undefined : inspectTemplate(opts.format);
      const found: Record<string, unknown>[] = [];
      for (const ref of refs) {
        found.push(
          MODES[ref] !== undefined ? inspectMode(ref) : await inspectNetwork(findNetwork(ref)),
        );
      }
      if (template !== undefined) {
        for (const f of found) console.log(template.render(f));
      } else {
        console.log(JSON.stringify(found, null, 4));
      }
    });
}

function rmCommand() {
  return new Command("rm")
    .alias("remove")
    .description("Remove networks (refused while a container is on one)")
    .argument("<network...>", "network names or ids")
    .addHelpText(
      "after",
      `
The bridge and its NAT and filter rules go with the network. "bridge", the default network, can
be removed too when no container uses it: it comes back with the next container that needs it.`,
    )
    .action(async (refs) => {
      const net = await networks();
      await eachContainer(refs, async (ref) => {
        if (MODES[ref] !== undefined) {
          throw new UserError(`Cannot remove network "${ref}": it is a pre-defined network`);
        }
        const problem = await net.removeNetwork(findNetwork(ref));
        console.log(ref);
        if (problem !== undefined) {
          console.error(`mini-docker: network ${ref} removed, but its teardown said: ${problem}`);
        }
      });
    });
}

/**
 * Removes every user-defined network no container uses (of those `wanted` lets through); their
 * names.
 */
export async function pruneNetworks(
  wanted: (network: { created: string }) => boolean = () => true,
): Promise<string[]> {
  const net = await networks();
  const used = net.networksInUse();
  const deleted: string[] = [];
  for (const n of listNetworks()) {
    if (n.name === DEFAULT_NETWORK || used.has(n.id) || !wanted(n)) continue;
    try {
      const problem = await net.removeNetwork(n);
      deleted.push(n.name);
      if (problem !== undefined) {
        console.error(`mini-docker: network ${n.name} removed, but its teardown said: ${problem}`);
      }
    } catch (err) {
      // A container joined it meanwhile: it is in use after all.
      if (!(err instanceof UserError)) throw err;
    }
  }
  return deleted;
}

function pruneCommand() {
  return new Command("prune")
    .description("Remove every user-defined network that no container uses")
    .option("-f, --force", "do not ask for confirmation")
    .action(async (opts) => {
      if (
        !opts.force &&
        !await confirm(
          "WARNING! This will remove all custom networks not used by at least one container.",
        )
      ) return;
      const deleted = await pruneNetworks();
      if (deleted.length > 0) console.log(`Deleted Networks:\n${deleted.join("\n")}`);
    });
}

function connectCommand() {
  return new Command("connect")
    .description("Connect a running container to a network")
    .argument("<network>", "network name or id")
    .argument("<container>", "container name or id")
    .option(
      "--alias <name>",
      "another name of the container on the network",
      collect,
      [] as string[],
    )
    .option("--ip <address>", "the container's address on the network")
    .action(async (ref, containerRef, opts) => {
      const def = findNetwork(ref);
      const { state, spec } = runningContainer(containerRef);
      await (await networks()).connect(state.id, def, {
        aliases: opts.alias,
        ip: opts.ip,
        hostname: spec.hostname,
      });
      await updateResolvConf(state.id, spec);
    });
}

function disconnectCommand() {
  return new Command("disconnect")
    .description("Disconnect a running container from a network")
    .argument("<network>", "network name or id")
    .argument("<container>", "container name or id")
    .action(async (ref, containerRef) => {
      const def = findNetwork(ref);
      const { state, spec } = runningContainer(containerRef);
      await (await networks()).disconnect(state.id, def);
      await updateResolvConf(state.id, spec);
    });
}

/** The `network` command and its subcommands. */
export function networkCommand() {
  return new Command("network")
    .description("Manage networks")
    .addCommand(createCommand())
    .addCommand(lsCommand())
    .addCommand(inspectCommand())
    .addCommand(rmCommand())
    .addCommand(pruneCommand())
    .addCommand(connectCommand())
    .addCommand(disconnectCommand())
    .addHelpText(
      "after",
      `
Examples:
  mini-docker network create app
  mini-docker run -d --network app --name db /bin/sh -c 'httpd -f -p 80'
  mini-docker run --network app /bin/wget -qO- http://db/     containers resolve each other by name
  mini-docker network ls
  mini-docker network rm app`,
    );
}
