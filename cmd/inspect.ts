/** `mini-docker inspect`: a container's state and configuration as JSON. */
import { Command } from "@commander-js/extra-typings";
import { type ContainerState, findContainer, logPath, stateDir } from "../container/state.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { INIT_ANNOTATION } from "../base/spec.ts";
import { isRunning } from "../container/lifecycle.ts";
import { UserError } from "../base/errors.ts";
import { eachContainer } from "./each.ts";

/** Docker's shape, for what mini-docker has. */
export function inspectContainer(s: ContainerState): Record<string, unknown> {
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
      NetworkMode: spec?.linux.namespaces.some((n) => n.type === "network") ? "none" : "host",
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
    CgroupPath: s.cgroupsPath,
    LogPath: s.detached ? logPath(s.id) : "",
  };
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
      await eachContainer(refs, (ref) => {
        found.push(inspectContainer(findContainer(ref)));
      });
      if (opts.format !== undefined) {
        for (const f of found) console.log(formatTemplate(opts.format, f));
      } else {
        console.log(JSON.stringify(found, null, 4));
      }
    });
}
