/**
 * The command lines compared, one per row of the start-up table. Every row runs the same
 * payload (`/bin/true` of the same busybox rootfs) in the same namespaces (pid, mount, uts,
 * ipc: mini-docker's default, no network namespace), and `launch(args)` gives the command
 * line that runs any other payload the same way (scale, memory and limit sections).
 */
import type { Workspace } from "./workspace.ts";

/** The repository (parent of bench/). */
export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${REPO}/main.ts`;

/** 64 MiB, the memory limit of the "memory limit" rows. */
export const MEMORY_LIMIT = 64 * 1024 * 1024;

/** One way of running a payload. */
export interface Tool {
  /** Key in the JSON output. */
  id: string;
  /** Row label. */
  label: string;
  /** The family (bar colour): mini-docker, floor, bwrap, runc, crun, podman, deno. */
  family: string;
  /** The command line of trial `n` (container names are unique per trial). */
  argv(n: number): string[];
  /** Extra environment. */
  env?: Record<string, string>;
  /** What the row includes, for the table notes. */
  note: string;
}

/** The Deno that runs the bench (the pinned toolchain's). */
export function denoPath(): string {
  return Deno.execPath();
}

/** Command lines that run `args` in a container of each runtime (sections 2 to 4). */
export interface Launchers {
  /** mini-docker run from source, with extra `run` flags. */
  miniDocker(args: string[], flags?: string[]): string[];
  /** runc/crun run of a bundle written beforehand (id = bundle name). */
  runc(id: string, bundle: string): string[];
  crun(id: string, bundle: string): string[];
}

/** The launchers of a workspace. */
export function launchers(ws: Workspace): Launchers {
  const deno = denoPath();
  return {
    miniDocker: (args, flags = []) => [
      deno,
      "run",
      "-A",
      "--quiet",
      MAIN,
      "run",
      "--rootfs",
      ws.rootfs,
      ...flags,
      ...args,
    ],
    runc: (id, bundle) => ["runc", "--root", ws.runcRoot, "run", "--bundle", bundle, id],
    crun: (id, bundle) =>
      ws.wrapForCrun(["crun", "--root", ws.crunRoot, "run", "--bundle", bundle, id]),
  };
}

/** The rows of the start-up table, built for one workspace. */
export async function startupTools(ws: Workspace, opts: { podman: boolean }): Promise<Tool[]> {
  const deno = denoPath();
  const L = launchers(ws);
  const payload = ["/bin/true"];
  const emptyProgram = `${ws.dir}/empty.ts`;
  Deno.writeTextFileSync(emptyProgram, "");
  const runcTrue = await ws.bundle("runc-true", { args: payload });
  const runcMem = await ws.bundle("runc-mem", { args: payload, memory: MEMORY_LIMIT });
  const crunTrue = await ws.bundle("crun-true", { args: payload });
  const crunMem = await ws.bundle("crun-mem", { args: payload, memory: MEMORY_LIMIT });
  const floor = [
    "unshare",
    "--pid",
    "--fork",
    "--mount",
    "--uts",
    "--ipc",
    "chroot",
    ws.rootfs,
    ...payload,
  ];
  const podman = (flags: string[]) =>
    ws.wrapForCrun([
      "podman",
      ...ws.podmanFlags,
      "run",
      "--rm",
      "--network",
      "host",
      "--cgroupns",
      "host",
      "--cgroup-parent",
      `/${ws.cgroupTag}/podman`,
      "--ulimit",
      "nofile=20000:20000",
      "--ulimit",
      "nproc=32768:32768",
      ...flags,
      ws.podmanImage,
      ...payload,
    ]);
  const wrapNote = ws.crunNeedsWrap
    ? " Includes `unshare -m sh -c 'mount --bind EMPTY /sys/fs/cgroup/unified/cgroup.controllers && exec ...'` (crun 1.8.1 refuses this hybrid host otherwise; see the floor+wrapper row for its cost)."
    : "";
  const tools: Tool[] = [
    {
      id: "mini-docker",
      label: "mini-docker run",
      family: "mini-docker",
      argv: () => L.miniDocker(payload),
      env: ws.mdEnv,
      note:
        "`deno run -A --quiet main.ts run --rootfs R /bin/true` from source: CLI Deno + init Deno (re-exec), cgroup (memory, cpu, cpuacct, pids), overlayfs layer, /dev, /proc, /sys, masked paths, pivot_root; waits for cleanup.",
    },
    {
      id: "mini-docker-wrapper",
      label: "./mini-docker run",
      family: "mini-docker",
      argv: () => [`${REPO}/mini-docker`, "run", "--rootfs", ws.rootfs, ...payload],
      env: ws.mdEnv,
      note: "The same through the ./mini-docker shell wrapper (one more exec of sh).",
    },
    {
      id: "mini-docker-mem",
      label: "mini-docker run --memory 64m",
      family: "mini-docker",
      argv: () => L.miniDocker(payload, ["--memory", "64m"]),
      env: ws.mdEnv,
      note: "As mini-docker run, with a 64 MiB memory limit.",
    },
    {
      id: "floor",
      label: "unshare + chroot (floor)",
      family: "floor",
      argv: () => floor,
      note:
        "`unshare --pid --fork --mount --uts --ipc chroot R /bin/true`: the namespaces and nothing else (no cgroup, no mounts, no pivot_root).",
    },
  ];
  if (ws.crunNeedsWrap) {
    tools.push({
      id: "floor-wrapped",
      label: "floor in crun's wrapper",
      family: "floor",
      argv: () => ws.wrapForCrun(floor),
      note: "The floor inside the private-mount-namespace wrapper that crun and podman need here.",
    });
  }
  tools.push(
    {
      id: "bwrap",
      label: "bwrap",
      family: "bwrap",
      argv: () => [
        "bwrap",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-ipc",
        "--bind",
        ws.rootfs,
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        ...payload,
      ],
      note:
        "`bwrap --unshare-pid --unshare-uts --unshare-ipc --bind R / --proc /proc --dev /dev` (mount namespace always): no cgroup.",
    },
    {
      id: "runc",
      label: "runc run",
      family: "runc",
      argv: (n) => L.runc(`runc-${n}`, runcTrue),
      note:
        "`runc run` of a bundle from `runc spec` (terminal false, root = R read-write, namespaces pid/mount/uts/ipc): cgroup (all v1 controllers), /dev, /proc, /sys, masked paths, capabilities, rlimits, pivot_root.",
    },
    {
      id: "runc-mem",
      label: "runc run, memory 64 MiB",
      family: "runc",
      argv: (n) => L.runc(`runcm-${n}`, runcMem),
      note: "As runc run, with linux.resources.memory.limit = 64 MiB.",
    },
    {
      id: "crun",
      label: "crun run",
      family: "crun",
      argv: (n) => L.crun(`crun-${n}`, crunTrue),
      note: `\`crun run\` of the same bundle as runc.${wrapNote}`,
    },
    {
      id: "crun-mem",
      label: "crun run, memory 64 MiB",
      family: "crun",
      argv: (n) => L.crun(`crunm-${n}`, crunMem),
      note: "As crun run, with a 64 MiB memory limit.",
    },
  );
  if (opts.podman) {
    tools.push(
      {
        id: "podman",
        label: "podman run --rm",
        family: "podman",
        argv: () => podman([]),
        note:
          `\`podman run --rm --network host --cgroupns host\` of the rootfs imported as an image (overlay storage in a temp dir, cgroupfs manager, file events, its default runtime crun and seccomp profile, conmon); wall time until podman exits, CPU until conmon and its cleanup have exited.${wrapNote}`,
      },
      {
        id: "podman-mem",
        label: "podman run --rm --memory 64m",
        family: "podman",
        argv: () => podman(["--memory", "64m"]),
        note: "As podman run, with a 64 MiB memory limit.",
      },
    );
  }
  tools.push({
    id: "deno-empty",
    label: "deno run (empty program)",
    family: "deno",
    argv: () => [deno, "run", "-A", "--quiet", emptyProgram],
    note:
      "Not a container: Deno starting an empty program, the price of each of mini-docker's two Deno processes.",
  });
  return tools;
}
