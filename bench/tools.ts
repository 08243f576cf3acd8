/**
 * The command lines compared, one per row of the start-up table. Every row runs the same
 * payload (`/bin/true` of the same busybox rootfs) in the same namespaces (pid, mount, uts,
 * ipc; no network namespace: mini-docker runs with `--network host`), and `launchers` give the
 * command lines that run any other payload the same way (scale, memory and limit sections).
 */
import { DEFAULT_CAPABILITIES } from "../security/capabilities.ts";
import { defaultSeccompProfile, resolveSeccomp } from "../security/seccomp_profile.ts";
import type { Workspace } from "./workspace.ts";

/** The repository (parent of bench/). */
export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${REPO}/main.ts`;

/**
 * mini-docker's flags in every section: the host's network, so that it creates the namespaces
 * every other tool does (NAMESPACES) and no network of its own, whatever its default network.
 */
const MD_FLAGS = ["--network", "host"];

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
      ...MD_FLAGS,
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
  // What mini-docker gives every container: Docker's 14 capabilities and Docker's seccomp
  // profile, resolved for them exactly as mini-docker resolves it.
  const docker = {
    capabilities: DEFAULT_CAPABILITIES,
    seccomp: resolveSeccomp(defaultSeccompProfile(), { capabilities: DEFAULT_CAPABILITIES }),
  };
  const runcDocker = await ws.bundle("runc-docker", { args: payload, docker });
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
        "`deno run -A --quiet main.ts run --network host --rootfs R /bin/true` from source: one Deno, whose Worker thread becomes the container; cgroup (memory, cpu, cpuacct, pids, devices with Docker's rules), overlayfs layer, /dev, /proc, /sys, masked paths, pivot_root, Docker's 14 capabilities and seccomp profile; waits for cleanup.",
    },
    {
      id: "mini-docker-wrapper",
      label: "./mini-docker run",
      family: "mini-docker",
      argv: () => [`${REPO}/mini-docker`, "run", ...MD_FLAGS, "--rootfs", ws.rootfs, ...payload],
      env: ws.mdEnv,
      note: "The same through the ./mini-docker shell wrapper (one more exec of sh).",
    },
    {
      id: "mini-docker-unconfined",
      label: "mini-docker run --security-opt seccomp=unconfined",
      family: "mini-docker",
      argv: () => L.miniDocker(payload, ["--security-opt", "seccomp=unconfined"]),
      env: ws.mdEnv,
      note:
        "As mini-docker run without a seccomp filter: no profile resolved, compiled or installed (capabilities and device rules stay).",
    },
    {
      id: "mini-docker-bridge",
      label: "mini-docker run --network bridge",
      family: "mini-docker",
      argv: () => L.miniDocker(payload, ["--network", "bridge"]),
      env: ws.mdEnv,
      note:
        "As mini-docker run on its default network: a network namespace with a veth on a bridge, an address, NAT, through netavark (the bridge itself and its rules stay from one run to the next, as Docker's docker0 does).",
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
        "`runc run` of a bundle from `runc spec` (terminal false, root = R read-write, namespaces pid/mount/uts/ipc): cgroup (all v1 controllers, runc's default device rules), /dev, /proc, /sys, masked paths, 3 capabilities, no_new_privs, no seccomp filter, rlimits, pivot_root.",
    },
    {
      id: "runc-docker",
      label: "runc run (Docker's seccomp profile)",
      family: "runc",
      argv: (n) => L.runc(`runcd-${n}`, runcDocker),
      note:
        "As runc run, confined like mini-docker: `linux.seccomp` = Docker's default profile resolved for Docker's 14 capabilities (the filter mini-docker installs, as OCI JSON), those 14 as bounding, effective and permitted set, no no_new_privs.",
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
      "Not a container: Deno starting an empty program, the floor of any Deno program (mini-docker starts one per container).",
  });
  return tools;
}
