/** `mini-docker inspect`: a container's state and configuration as JSON. */
import { Command } from "@commander-js/extra-typings";
import { type ContainerState, findContainer, logPath, stateDir } from "../container/state.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { INIT_ANNOTATION } from "../base/spec.ts";
import { isRunning } from "../container/lifecycle.ts";
import { UserError } from "../base/errors.ts";
import { eachContainer } from "./each.ts";
import type { EndpointRecord } from "../network/mod.ts";
import { networks } from "../container/start.ts";
import { runRoot } from "../base/paths.ts";

/** The network record of a running container (network/endpoints.ts), if it has one. */
async function networkRecord(s: ContainerState): Promise<EndpointRecord | undefined> {
  if (!isRunning(s)) return undefined;
  try {
    Deno.statSync(`${runRoot()}/networks`); // never a network on this host: nothing to load
  } catch {
    return undefined;
  }
  return (await networks()).readRecord(s.id);
}

/**
 * Docker's NetworkSettings: the container's endpoint on each network (address, gateway, MAC,
 * DNS names) while it runs, and its published ports. The top-level address fields are the
 * default network's, as Docker's; a stopped container keeps its networks without addresses.
 */
export function networkSettings(
  spec: ContainerSpec | undefined,
  record: EndpointRecord | undefined,
): Record<string, unknown> {
  const net = spec?.network;
  const mode = net?.mode ??
    (spec?.linux.namespaces.some((n) => n.type === "network") ? "none" : "host");
  const endpoint = (name: string) => {
    const e = record?.endpoints.find((x) => x.network.name === name);
    return {
      IPAMConfig: e !== undefined && name === mode && net?.ip !== undefined
        ? { IPv4Address: net.ip }
        : null,
      Links: null,
      Aliases: e?.aliases ?? (name === mode ? net?.aliases ?? [] : []),
      NetworkID: e?.network.id ?? "",
      EndpointID: "",
      Gateway: e?.network.gateway ?? "",
      IPAddress: e?.ip ?? "",
      IPPrefixLen: e === undefined ? 0 : Number(e.network.subnet.split("/")[1]),
      IPv6Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      MacAddress: e?.mac ?? "",
      DNSNames: e === undefined || !e.network.dns ? null : [record!.containerName, ...e.aliases],
    };
  };
  const names = [mode, ...(record?.endpoints ?? []).map((e) => e.network.name)];
  const networksOut = Object.fromEntries([...new Set(names)].map((n) => [n, endpoint(n)]));
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const e of net?.exposedPorts ?? []) ports[e] = null;
  for (const p of record?.ports ?? []) {
    const key = `${p.containerPort}/${p.protocol}`;
    (ports[key] ??= []).push({ HostIp: p.hostIp || "0.0.0.0", HostPort: String(p.hostPort) });
  }
  const bridge = endpoint("bridge");
  const onDefault = mode === "bridge" && record !== undefined;
  return {
    Bridge: "",
    // One sandbox (network namespace) per container: its id is the container's.
    SandboxID: record?.netns === undefined ? "" : record.containerId,
    SandboxKey: record?.netns ?? "",
    Ports: ports,
    HairpinMode: false,
    LinkLocalIPv6Address: "",
    LinkLocalIPv6PrefixLen: 0,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: "",
    Gateway: onDefault ? bridge.Gateway : "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    IPAddress: onDefault ? bridge.IPAddress : "",
    IPPrefixLen: onDefault ? bridge.IPPrefixLen : 0,
    IPv6Gateway: "",
    MacAddress: onDefault ? bridge.MacAddress : "",
    Networks: networksOut,
  };
}

/** Docker's shape, for what mini-docker has. */
export function inspectContainer(
  s: ContainerState,
  record?: EndpointRecord,
): Record<string, unknown> {
  let spec: ContainerSpec | undefined;
  try {
    spec = JSON.parse(Deno.readTextFileSync(`${stateDir(s.id)}/config.json`));
  } catch { /* created but not configured */ }
  const res = spec?.linux.resources;
  return {
    Id: s.id,
    Name: s.name,
    Created: s.created,
    Path: s.command[0],
    Args: s.command.slice(1),
    State: {
      Status: s.status,
      Running: isRunning(s),
      Pid: s.status === "running" ? s.process?.pid ?? 0 : 0,
      ExitCode: s.exitCode ?? 0,
      OOMKilled: s.oomKilled ?? false,
      StartedAt: s.startedAt ?? "",
      FinishedAt: s.finishedAt ?? "",
    },
    Image: s.image ?? "",
    Config: {
      Hostname: spec?.hostname,
      Env: spec?.process.env,
      Cmd: s.command,
      WorkingDir: spec?.process.cwd,
      User: spec === undefined ? undefined : `${spec.process.user.uid}:${spec.process.user.gid}`,
      Tty: spec?.process.terminal ?? false,
      Image: s.imageRef ?? s.rootfs,
      ExposedPorts: spec?.network === undefined || spec.network.exposedPorts.length === 0
        ? undefined
        : Object.fromEntries(spec.network.exposedPorts.map((p) => [p, {}])),
    },
    HostConfig: {
      AutoRemove: s.autoRemove,
      Init: spec?.annotations[INIT_ANNOTATION] === "true",
      Memory: res?.memory?.limit ?? 0,
      MemorySwap: res?.memory?.swap ?? 0,
      NanoCpus: res?.cpu?.quota !== undefined
        ? Math.round(res.cpu.quota / (res.cpu.period ?? 100000) * 1e9)
        : 0,
      CpusetCpus: res?.cpu?.cpus ?? "",
      PidsLimit: res?.pids?.limit ?? 0,
      NetworkMode: spec?.network?.mode ??
        (spec?.linux.namespaces.some((n) => n.type === "network") ? "none" : "host"),
      PortBindings: portBindings(spec),
      PublishAllPorts: spec?.network?.publishAll ?? false,
      Dns: spec?.network?.dns ?? [],
      ExtraHosts: spec?.network?.extraHosts ?? null,
    },
    Mounts: (spec?.mounts ?? []).filter((m) => m.type === "bind").map((m) => ({
      Type: "bind",
      Source: m.source,
      Destination: m.destination,
      RW: !m.options.includes("ro"),
    })),
    GraphDriver: spec?.rootLayers === undefined ? undefined : {
      Name: spec.rootLayers.upper === undefined ? "readonly" : "overlay",
      Data: {
        LowerDir: spec.rootLayers.lower.join(":"),
        UpperDir: spec.rootLayers.upper,
        WorkDir: spec.rootLayers.work,
        MergedDir: spec.root.path,
      },
    },
    NetworkSettings: networkSettings(spec, record),
    CgroupPath: s.cgroupsPath,
    LogPath: s.detached ? logPath(s.id) : "",
  };
}

/** Docker's HostConfig.PortBindings: the ports asked for ("" for a free host port). */
function portBindings(spec: ContainerSpec | undefined) {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of spec?.network?.ports ?? []) {
    (out[`${p.containerPort}/${p.protocol}`] ??= []).push({
      HostIp: p.hostIp,
      HostPort: p.hostPort === 0 ? "" : String(p.hostPort),
    });
  }
  return out;
}

/** A small subset of Go templates: `{{.A.B}}` and `{{json .A}}`, as used with Docker's -f. */
export function formatTemplate(template: string, value: unknown): string {
  return template.replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_, json, path: string) => {
    let v: unknown = value;
    for (const key of path.split(".").filter((k) => k !== "")) {
      v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined;
    }
    if (json !== undefined) return JSON.stringify(v);
    if (v === undefined || v === null) return "<no value>";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  });
}

export function inspectCommand() {
  return new Command("inspect")
    .description("Show containers' state and configuration as JSON")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .option("-f, --format <template>", "a template such as '{{.State.ExitCode}}'")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker inspect web
  mini-docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}' web`,
    )
    .action(async (refs, opts) => {
      if (opts.format !== undefined && !opts.format.includes("{{")) {
        throw new UserError(
          `Invalid --format "${opts.format}": expected a template such as '{{.State.Status}}'`,
        );
      }
      const found: Record<string, unknown>[] = [];
      await eachContainer(refs, async (ref) => {
        const state = findContainer(ref);
        found.push(inspectContainer(state, await networkRecord(state)));
      });
      if (opts.format !== undefined) {
        for (const f of found) console.log(formatTemplate(opts.format, f));
      } else {
        console.log(JSON.stringify(found, null, 4));
      }
    });
}
