/**
 * `version` and `info`: what mini-docker is and what it runs on, in Docker's layout (a daemonless
 * tool: the "Server" part describes the host as every command finds it), with `--format`.
 */
import { Command } from "@commander-js/extra-typings";
import { VERSION } from "../base/version.ts";
import { dataRoot, runRoot } from "../base/paths.ts";
import { availableControllers, cgroupDriver, detectLayout } from "../cgroups/manager.ts";
import { displayStatus, listStates } from "../container/state.ts";
import { ImageStore } from "../images/store.ts";
import { inspectTemplate } from "./template.ts";
import { supervisorDir } from "../container/supervisor.ts";
import { findInit } from "./run_action.ts";
import { Netavark } from "../network/netavark.ts";
import { formatBytes } from "./units.ts";

/** Prints `data` by `--format` (a template, or json), or returns false to print the default. */
function formatted(data: unknown, format: string | undefined): boolean {
  if (format === undefined) return false;
  if (format === "json") {
    console.log(JSON.stringify(data));
    return true;
  }
  console.log(inspectTemplate(format).render(data));
  return true;
}

/** Docker's os/arch names. */
function arch(): string {
  return ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch] ??
    Deno.build.arch;
}

function readOr(path: string, fallback = ""): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

export function versionCommand() {
  return new Command("version")
    .description("Show the version of mini-docker and of what it runs on")
    .option("-f, --format <template>", "a Go template such as '{{.Client.Version}}', or json")
    .action((opts) => {
      const data = {
        Client: {
          Platform: { Name: "mini-docker" },
          Version: VERSION,
          DenoVersion: Deno.version.deno,
          V8Version: Deno.version.v8,
          TypeScriptVersion: Deno.version.typescript,
          Os: Deno.build.os,
          Arch: arch(),
          Context: "default",
        },
        Engine: {
          Version: VERSION,
          KernelVersion: readOr("/proc/sys/kernel/osrelease").trim(),
          Runtime: "mini-docker (a Deno thread becomes each container; no runc, no daemon)",
          Os: Deno.build.os,
          Arch: arch(),
        },
      };
      if (formatted(data, opts.format)) return;
      const c = data.Client;
      const e = data.Engine;
      console.log(
        [
          "Client: mini-docker",
          ` Version:           ${c.Version}`,
          ` Deno version:      ${c.DenoVersion}`,
          ` V8 version:        ${c.V8Version}`,
          ` TypeScript:        ${c.TypeScriptVersion}`,
          ` OS/Arch:           ${c.Os}/${c.Arch}`,
          ` Context:           ${c.Context}`,
          "",
          "Engine: (daemonless: each command works on the state on disk)",
          ` Version:           ${e.Version}`,
          ` Kernel Version:    ${e.KernelVersion}`,
          ` Runtime:           ${e.Runtime}`,
          ` OS/Arch:           ${e.Os}/${e.Arch}`,
        ].join("\n"),
      );
    });
}

/** The file system type of the mount that holds `path` (from /proc/self/mountinfo). */
function backingFilesystem(path: string): string {
  let best = { point: "", type: "unknown" };
  for (const line of readOr("/proc/self/mountinfo").split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 0) continue;
    const point = fields[4]!.replace(/\\040/g, " ");
    const inside = path === point || path.startsWith(point.endsWith("/") ? point : `${point}/`);
    if (inside && point.length >= best.point.length) best = { point, type: fields[dash + 1]! };
  }
  return best.type;
}

/** The nearest existing directory at or above `path`. */
function existingAbove(path: string): string {
  for (let p = path; p !== ""; p = p.slice(0, p.lastIndexOf("/"))) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* not yet */ }
  }
  return "/";
}

/** The static init of `--init` (run's own choice), or "" when the host has none. */
function initBinary(): string {
  try {
    return findInit();
  } catch {
    return "";
  }
}

/** The network driver as `run` finds it, or what is missing. */
function networkDriver(): { ok: boolean; text: string } {
  try {
    return { ok: true, text: `netavark (${Netavark.detect().path})` };
  } catch (err) {
    return { ok: false, text: (err as Error).message };
  }
}

/** Whether a supervisor of detached containers runs (its pid, or undefined). */
function supervisorPid(): number | undefined {
  try {
    for (const e of Deno.readDirSync(supervisorDir())) {
      if (!e.name.endsWith(".pid")) continue;
      const pid = Number(readOr(`${supervisorDir()}/${e.name}`).trim());
      if (pid > 0 && readOr(`/proc/${pid}/stat`) !== "") return pid;
    }
  } catch { /* none ran */ }
  return undefined;
}

export function infoCommand() {
  return new Command("info")
    .description("Show how mini-docker runs here: containers, storage, cgroups, security")
    .option("-f, --format <template>", "a Go template such as '{{.CgroupVersion}}', or json")
    .action((opts) => {
      const states = listStates();
      const count = (status: string) => states.filter((s) => displayStatus(s) === status).length;
      const layout = detectLayout();
      const overlay = Deno.env.get("MINI_DOCKER_STORAGE") !== "readonly" &&
        /\toverlay\n/.test(readOr("/proc/filesystems"));
      const memTotal = Number(/^MemTotal:\s+(\d+) kB/m.exec(readOr("/proc/meminfo"))?.[1] ?? 0) *
        1024;
      const osName = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readOr("/etc/os-release"))?.[1] ?? "";
      const supervisor = supervisorPid();
      const network = networkDriver();
      let images = 0;
      try {
        images = Object.keys(new ImageStore().readIndex().images).length;
      } catch { /* no store yet */ }
      const data = {
        ID: "",
        Containers: states.length,
        ContainersRunning: count("running"),
        ContainersPaused: count("paused"),
        ContainersStopped: states.length - count("running") - count("paused"),
        Images: images,
        Driver: overlay ? "overlay" : "readonly",
        DriverStatus: [["Backing Filesystem", backingFilesystem(existingAbove(dataRoot()))]],
        LoggingDriver: "cri-file",
        CgroupDriver: "cgroupfs",
        CgroupVersion: layout === "v2" ? "2" : "1",
        CgroupLayout: layout,
        CgroupControllers: availableControllers(),
        NetworkDriver: network.ok ? network.text : "",
        KernelVersion: readOr("/proc/sys/kernel/osrelease").trim(),
        OperatingSystem: osName,
        OSType: Deno.build.os,
        Architecture: Deno.build.arch,
        NCPU: navigator.hardwareConcurrency,
        MemTotal: memTotal,
        Name: Deno.hostname(),
        DockerRootDir: dataRoot(),
        RunRoot: runRoot(),
        ServerVersion: VERSION,
        DefaultRuntime: "mini-docker",
        Runtimes: { "mini-docker": { path: Deno.execPath() } },
        InitBinary: initBinary(),
        SecurityOptions: ["name=seccomp,profile=builtin", "name=capabilities,default=docker"],
        Supervisor: supervisor === undefined ? "" : `running (pid ${supervisor})`,
      };
      if (formatted(data, opts.format)) return;
      console.log(
        [
          "Client: mini-docker",
          ` Version:    ${VERSION}`,
          ` Deno:       ${Deno.version.deno}`,
          "",
          "Server: (daemonless: each command works on the state on disk)",
          ` Containers: ${data.Containers}`,
          `  Running: ${data.ContainersRunning}`,
          `  Paused: ${data.ContainersPaused}`,
          `  Stopped: ${data.ContainersStopped}`,
          ` Images: ${data.Images}`,
          ` Server Version: ${VERSION}`,
          ` Storage Driver: ${data.Driver}${
            overlay ? "" : " (no overlayfs: a read-only root with tmpfs scratch space)"
          }`,
          `  Backing Filesystem: ${data.DriverStatus[0]![1]}`,
          ` Logging Driver: ${data.LoggingDriver} (detached containers)`,
          ` Cgroup Driver: ${data.CgroupDriver}`,
          ` Cgroup Version: ${data.CgroupVersion}`,
          `  Layout: ${
            layout === "hybrid"
              ? "hybrid (v1 controllers, and a cgroup2 mount without them)"
              : layout
          }`,
          `  Controllers: ${data.CgroupControllers.join(" ")}`,
          `  Parent: ${cgroupDriver().version === 2 ? "" : "<controller>/"}${
            Deno.env.get("MINI_DOCKER_CGROUP_PARENT") || "mini-docker"
          }`,
          ` Network: ${network.text}`,
          ` Runtimes: mini-docker`,
          ` Default Runtime: mini-docker (a Deno thread becomes each container; no runc)`,
          ` Init Binary: ${data.InitBinary || "none (install tini for --init)"}`,
          " Security Options:",
          "  seccomp",
          "   Profile: builtin (Docker's default profile, compiled with libseccomp)",
          "  capabilities",
          "   Default: Docker's 14",
          " Supervisor of detached containers: " +
          (data.Supervisor || "not running (it starts with the first detached container)"),
          ` Kernel Version: ${data.KernelVersion}`,
          ` Operating System: ${data.OperatingSystem}`,
          ` OSType: ${data.OSType}`,
          ` Architecture: ${data.Architecture}`,
          ` CPUs: ${data.NCPU}`,
          ` Total Memory: ${formatBytes(memTotal)}`,
          ` Name: ${data.Name}`,
          ` Root Dir: ${data.DockerRootDir}`,
          ` Run Root: ${data.RunRoot}`,
        ].join("\n"),
      );
    });
}
