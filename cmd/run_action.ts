/**
 * What `run` does once its command line is read (by commander in cmd/run.ts, or by the fast
 * parser in cmd/run_args.ts): flags -> ContainerSpec (validated before any work) -> runtime.
 * It loads neither commander nor node: modules, and the image store only when an image is used.
 */
import {
  type ContainerNetwork,
  DEFAULT_PATH,
  INIT_ANNOTATION,
  newSpec,
  type PortMapping,
  validateSpec,
} from "../base/spec.ts";
import { ExitCode, UserError } from "../base/errors.ts";
import { mergeEnv, parseEnvEntry, parseEnvFile } from "./units.ts";
import { resourcesFromFlags, statsReporter } from "./resources.ts";
import { newId, stateDir } from "../container/state.ts";
import { absolutePath, cgroupParent } from "../base/paths.ts";
import { runContainer } from "../container/foreground.ts";
import type { ContainerThread } from "../container/threads.ts";
import { INIT_PATH } from "../container/mounts.ts";
import { confinement } from "../security/policy.ts";
import { formatBytes, parseUlimit } from "./units.ts";
import { assertRootfs, defaultRootfs, rootfsStatus } from "../rootfs/check.ts";
import type { RunFlags } from "./run_args.ts";
import { parseAddHost, parseDns, parseExpose, parsePublish } from "./publish.ts";
import { lazy } from "../base/lazy.ts";
import type { resolveImage } from "../images/mod.ts";

type ResolvedImage = Awaited<ReturnType<typeof resolveImage>>;

/** The image store, loaded only when the run uses an image. */
const images = () => lazy<typeof import("../images/mod.ts")>("../images/mod.ts", import.meta.url);
type Supervisor = typeof import("../container/supervisor.ts");
type Networks = typeof import("../network/mod.ts");
type Users = typeof import("../images/user.ts");

/** Runs `command` with `opts`; a foreground run ends by throwing the container's ExitCode. */
export async function runAction(
  command: string[],
  opts: RunFlags,
  thread?: ContainerThread,
): Promise<void> {
  if (Deno.uid() !== 0) {
    throw new UserError(
      "mini-docker run needs root (namespaces, mounts, cgroups): run it with sudo",
    );
  }
  if (opts.detach && opts.statsReport) {
    throw new UserError(
      '--stats-report needs a foreground run: drop -d, or watch it with "mini-docker stats"',
    );
  }
  if (!opts.detach && opts.tty && opts.interactive && !Deno.stdin.isTerminal()) {
    throw new UserError("The input device is not a TTY: drop -t, or run from a terminal");
  }
  const { spec, meta, defaultSeccomp } = await buildRun(command, opts);
  if (opts.detach) {
    thread?.end();
    const { startDetached } = await lazy<Supervisor>("../container/supervisor.ts", import.meta.url);
    const id = await startDetached({
      spec,
      meta,
      interactive: opts.interactive === true,
      tty: opts.tty === true,
      autoRemove: opts.rm === true,
      defaultSeccomp,
    });
    console.log(id);
    return;
  }
  const final = await runContainer(spec, meta, {
    thread,
    defaultSeccomp,
    tty: opts.tty === true,
    beforeCleanup: opts.statsReport ? statsReporter(spec.linux.resources) : undefined,
  });
  if (final.oomKilled) {
    const limit = spec.linux.resources.memory?.limit;
    console.error(
      `mini-docker: container ${final.name} (${final.id.slice(0, 12)}) was killed: out of memory${
        limit === undefined ? "" : ` (limit ${formatBytes(limit)})`
      }`,
    );
  }
  // The exit code is the container's; main.ts exits with it.
  throw new ExitCode(final.exitCode ?? 255);
}

/**
 * The init of `--init`: a static program (the container may have no C library), found on the
 * host: $MINI_DOCKER_INIT, else tini's static build (Docker's docker-init is tini), else
 * catatonit (Podman's).
 */
export function findInit(): string {
  const candidates = [
    Deno.env.get("MINI_DOCKER_INIT"),
    "/usr/bin/tini-static",
    "/usr/libexec/podman/catatonit",
    "/usr/bin/catatonit",
  ].filter((p): p is string => p !== undefined && p !== "");
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not installed */ }
  }
  throw new UserError(
    '--init needs a static init on the host: install tini ("apt install tini") or catatonit, or set MINI_DOCKER_INIT to one',
  );
}

/** The image run when neither --image nor --rootfs is given and ./rootfs/alpine is missing. */
export function defaultImage(): string {
  return Deno.env.get("MINI_DOCKER_DEFAULT_IMAGE") || "alpine:3.18";
}

/** Where the container's root comes from: a rootfs directory or an image's layers. */
interface RootSource {
  layers: string[];
  rootfs?: string;
  image?: ResolvedImage;
}

async function resolveRoot(opts: RunFlags): Promise<RootSource> {
  // Pull progress is for a person at a terminal; in scripts only the outcome counts.
  const log = Deno.stderr.isTerminal() ? (line: string) => console.error(line) : () => {};
  if (opts.image !== undefined) {
    if (opts.rootfs !== undefined) {
      throw new UserError("--image and --rootfs cannot be used together: choose one root");
    }
    const image = await (await images()).resolveImage(opts.image, {
      pull: "missing",
      log,
    });
    return { layers: image.layers, image };
  }
  if (opts.rootfs !== undefined) {
    assertRootfs(opts.rootfs);
    return { layers: [absolutePath(opts.rootfs)], rootfs: absolutePath(opts.rootfs) };
  }
  const dir = defaultRootfs();
  if (rootfsStatus(dir) === "ok") return { layers: [absolutePath(dir)], rootfs: absolutePath(dir) };
  // No default rootfs: the default image, pulled where the network allows.
  try {
    const image = await (await images()).resolveImage(defaultImage(), {
      pull: "missing",
      log,
    });
    return { layers: image.layers, image };
  } catch (err) {
    throw new UserError(
      `Rootfs "${dir}" does not exist and the default image "${defaultImage()}" is not available (${
        (err as Error).message
      }): prepare the rootfs with "mini-docker rootfs", or pass --rootfs DIR or --image NAME`,
    );
  }
}

/**
 * The network flags read into the spec's network (Docker's rules): `-P` publishes every exposed
 * port (the image's and --expose's) that no -p publishes, on a free host port.
 */
export function networkFromFlags(
  opts: RunFlags,
  imagePorts: readonly string[] = [],
): ContainerNetwork {
  const mode = opts.network === "default" ? "bridge" : opts.network;
  if (mode === "") {
    throw new UserError('Invalid --network "": name a network, or bridge, host or none');
  }
  const ports: PortMapping[] = opts.publish.flatMap(parsePublish);
  const exposed = [
    ...new Set([
      ...imagePorts.flatMap((p) => parseExpose(p, "exposed port of the image")),
      ...opts.expose.flatMap((p) => parseExpose(p)),
      ...ports.map((p) => `${p.containerPort}/${p.protocol}`),
    ]),
  ];
  if (opts.publishAll) {
    for (const e of exposed) {
      const [port, protocol] = e.split("/") as [string, "tcp" | "udp"];
      if (ports.some((p) => p.containerPort === Number(port) && p.protocol === protocol)) continue;
      ports.push({ hostIp: "", hostPort: 0, containerPort: Number(port), protocol });
    }
  }
  if (opts.ip !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(opts.ip)) {
    throw new UserError(`Invalid --ip "${opts.ip}": expected an IPv4 address, such as 10.1.0.5`);
  }
  return {
    mode,
    aliases: opts.networkAlias,
    ...(opts.ip !== undefined && { ip: opts.ip }),
    ports,
    publishAll: opts.publishAll === true,
    exposedPorts: exposed,
    dns: opts.dns.map(parseDns),
    extraHosts: opts.addHost.map(parseAddHost),
  };
}

/** Turns the command line into a validated spec. Reads files and images named by flags. */
export async function buildRun(positional: string[], opts: RunFlags) {
  if (opts.workdir !== undefined && !opts.workdir.startsWith("/")) {
    throw new UserError(`Invalid working directory "${opts.workdir}": it must be an absolute path`);
  }
  if (positional.length === 0 && opts.image === undefined && opts.entrypoint === undefined) {
    throw new UserError(
      'No command given: "mini-docker run [options] COMMAND [ARG...]", e.g. /bin/sh',
    );
  }
  const resources = resourcesFromFlags(opts);
  const rlimits = opts.ulimit.map(parseUlimit);
  const init = opts.init ? findInit() : undefined;
  // The network flags first (bad input is found before an image is pulled); the image's exposed
  // ports come in below.
  networkFromFlags(opts);
  const root = await resolveRoot(opts);
  const config = root.image?.config ?? {};
  const network = networkFromFlags(opts, Object.keys(config.ExposedPorts ?? {}));
  if (
    network.mode !== "host" && network.mode !== "none" || network.ip !== undefined ||
    network.aliases.length > 0
  ) {
    (await lazy<Networks>("../network/mod.ts", import.meta.url)).checkNetwork(network);
  }

  // Docker's rules: --entrypoint replaces the image's entrypoint and drops its Cmd; arguments
  // after the options replace Cmd.
  const entrypoint = opts.entrypoint !== undefined ? [opts.entrypoint] : config.Entrypoint ?? [];
  const cmd = positional.length > 0
    ? positional
    : opts.entrypoint !== undefined
    ? []
    : config.Cmd ?? [];
  const command = [...(init !== undefined ? [INIT_PATH, "--"] : []), ...entrypoint, ...cmd];
  if (command.length === (init !== undefined ? 2 : 0)) {
    throw new UserError(
      `No command given, and image "${opts.image}" has no Entrypoint or Cmd: pass one`,
    );
  }
  const userSpec = opts.user ?? config.User ?? "";
  const user = userSpec === ""
    ? undefined
    : (await lazy<Users>("../images/user.ts", import.meta.url))
      .lookupUser(root.layers, userSpec);
  const workdir = opts.workdir ?? (config.WorkingDir || "/");

  const id = newId();
  const hostname = opts.hostname ?? id.slice(0, 12);
  const lookup = (key: string) => Deno.env.get(key);
  const fileEnv = opts.envFile.flatMap((file) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      throw new UserError(`Cannot read env file "${file}": ${(err as Error).message}`);
    }
    return parseEnvFile(text, file, lookup);
  });
  const flagEnv = opts.env.map((e) => parseEnvEntry(e, lookup)).filter((e) => e !== undefined);
  const env = mergeEnv(
    [
      `PATH=${DEFAULT_PATH}`,
      `HOSTNAME=${hostname}`,
      `HOME=${user === undefined || user.uid === 0 ? "/root" : "/"}`,
      ...(opts.tty ? ["TERM=xterm"] : []),
    ],
    config.Env ?? [],
    fileEnv,
    flagEnv,
  );

  const security = await confinement(opts, user ?? { uid: 0 }, { deferDefault: true });
  const layerDir = stateDir(id);
  const overlay = overlaySupported();
  if (!overlay) {
    console.error(
      "mini-docker: overlayfs is unavailable: the root is read-only, with tmpfs on /tmp, /run and /var/tmp",
    );
  }
  const spec = newSpec({
    args: command,
    env,
    cwd: workdir,
    user,
    hostname,
    rootPath: `${layerDir}/merged`,
    rootLayers: overlay
      ? { lower: root.layers, upper: `${layerDir}/upper`, work: `${layerDir}/work` }
      : { lower: root.layers },
    hostNetwork: network.mode === "host",
    network,
    terminal: opts.tty === true,
    resources,
    capabilities: security.capabilities,
    noNewPrivileges: security.noNewPrivileges,
    seccomp: security.seccomp,
    devices: security.devices,
    deviceRules: security.deviceRules,
    unmasked: security.unmasked,
    rlimits,
    mounts: init === undefined ? [] : [{
      destination: INIT_PATH,
      type: "bind",
      source: init,
      options: ["bind", "ro", "nosuid", "nodev"],
    }],
    cgroupsPath: `${cgroupParent()}/${id}`,
    annotations: {
      ...(opts.name === undefined ? {} : { "org.mini-docker.name": opts.name }),
      ...(opts.init ? { [INIT_ANNOTATION]: "true" } : {}),
    },
  });
  validateSpec(spec);
  return {
    spec,
    /** Docker's default seccomp profile, for the engine to resolve (see security/policy.ts). */
    defaultSeccomp: security.defaultSeccomp === true,
    meta: {
      id,
      name: opts.name,
      rootfs: root.rootfs,
      image: root.image?.id,
      imageRef: root.image?.ref,
    },
  };
}

/**
 * Whether containers get an overlayfs writable layer. `MINI_DOCKER_STORAGE=readonly` forces the
 * fallback (a read-only root plus tmpfs), which is also used when the kernel has no overlayfs.
 */
function overlaySupported(): boolean {
  const wanted = Deno.env.get("MINI_DOCKER_STORAGE");
  if (wanted === "readonly") return false;
  if (wanted !== undefined && wanted !== "overlay") {
    throw new UserError(`Invalid MINI_DOCKER_STORAGE "${wanted}": use "overlay" or "readonly"`);
  }
  try {
    if (/\toverlay\n/.test(Deno.readTextFileSync("/proc/filesystems"))) return true;
    Deno.statSync("/sys/module/overlay");
    return true;
  } catch {
    return false;
  }
}
