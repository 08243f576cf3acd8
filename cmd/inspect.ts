/** `mini-docker inspect`: a container's state and configuration as JSON. */
import { Command } from "@commander-js/extra-typings";
import {
  containerConfig,
  type ContainerState,
  displayStatus,
  findContainer,
  logPath,
  stateDir,
} from "../container/state.ts";
import { ZERO_TIME } from "../base/time.ts";
import { inspectTemplate } from "./template.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { INIT_ANNOTATION } from "../base/spec.ts";
import { isRunning } from "../container/lifecycle.ts";
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
  const config = containerConfig(s);
  const running = isRunning(s);
  const dir = stateDir(s.id);
  return {
    Id: s.id,
    Created: s.created,
    Path: s.command[0] ?? "",
    Args: s.command.slice(1),
    State: {
      Status: displayStatus(s),
      Running: running,
      Paused: running && s.paused === true,
      Restarting: s.status === "restarting",
      OOMKilled: s.oomKilled ?? false,
      Dead: false,
      Pid: running ? s.process?.pid ?? 0 : 0,
      ExitCode: s.exitCode ?? 0,
      Error: s.error ?? "",
      StartedAt: s.startedAt ?? ZERO_TIME,
      FinishedAt: s.finishedAt ?? ZERO_TIME,
    },
    Image: s.image ?? "",
    ResolvConfPath: `${dir}/resolv.conf`,
    HostnamePath: `${dir}/hostname`,
    HostsPath: `${dir}/hosts`,
    LogPath: s.detached ? logPath(s.id) : "",
    Name: `/${s.name}`,
    RestartCount: s.restartCount ?? 0,
    Driver: spec?.rootLayers?.upper === undefined ? "readonly" : "overlay",
    Platform: "linux",
    Config: {
      Hostname: spec?.hostname ?? "",
      Domainname: "",
      User: config.user,
      AttachStdin: config.openStdin && config.stdinOnce,
      AttachStdout: !s.detached || config.stdinOnce,
      AttachStderr: !s.detached || config.stdinOnce,
      ExposedPorts: spec?.network === undefined || spec.network.exposedPorts.length === 0
        ? undefined
        : Object.fromEntries(spec.network.exposedPorts.map((p) => [p, {}])),
      Tty: config.tty,
      OpenStdin: config.openStdin,
      StdinOnce: config.stdinOnce,
      Env: spec?.process.env ?? [],
      Cmd: config.cmd,
      Image: s.imageRef ?? s.rootfs ?? "",
      WorkingDir: spec?.process.cwd ?? "",
      Entrypoint: config.entrypoint,
      Labels: config.labels,
    },
    HostConfig: {
      AutoRemove: s.autoRemove,
      RestartPolicy: {
        Name: config.restartPolicy.name,
        MaximumRetryCount: config.restartPolicy.maximumRetryCount,
      },
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
      ReadonlyRootfs: spec?.root.readonly ?? false,
      CgroupnsMode: spec?.linux.namespaces.some((n) => n.type === "cgroup" && n.path === undefined)
        ? "private"
        : "host",
    },
    // Volumes, binds and tmpfs of the user's; the /etc files and the init are in *Path and
    // HostConfig.Init, as Docker shows them.
    Mounts: (spec?.mountPoints ?? []).map(({ Anonymous: _, ...m }) => m),
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

export function inspectCommand() {
  return new Command("inspect")
    .description("Show containers' state and configuration as JSON")
    .argument("<container...>", "container names or ids (unique prefixes work)")
    .option("-f, --format <template>", "a Go template such as '{{.State.ExitCode}}', or json")
    .addHelpText(
      "after",
      `
Examples:
  mini-docker inspect web
  mini-docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}' web
  mini-docker inspect -f '{{json .Config.Labels}}' web`,
    )
    .action(async (refs, opts) => {
      // A template that does not parse is refused before anything is looked up (Docker: 64).
      const template = opts.format !== undefined && opts.format !== "json"
        ? inspectTemplate(opts.format)
        : undefined;
      const found: Record<string, unknown>[] = [];
      try {
        await eachContainer(refs, async (ref) => {
          const state = findContainer(ref);
          const data = inspectContainer(state, await networkRecord(state));
          // A template's output comes as each container is found, as Docker's does.
          if (template !== undefined) console.log(template.render(data));
          else found.push(data);
        });
      } finally {
        if (opts.format === "json") console.log(JSON.stringify(found));
        else if (template === undefined) console.log(JSON.stringify(found, null, 4));
      }
    });
}
