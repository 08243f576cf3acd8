/**
 * What `run` (and `create`) do once their command line is read (by commander in cmd/run.ts, or
 * by the fast parser in cmd/run_args.ts): flags -> ContainerSpec (validated before any work) ->
 * runtime. It loads neither commander nor node: modules, and the image store only when an image
 * is used.
 *
 * The positionals are Docker's `IMAGE [COMMAND] [ARG...]`, with the original Mini-Docker's form
 * kept: without --image and --rootfs, a first positional that is an absolute path is a command
 * for the default root filesystem (`run /bin/sh`); with either, every positional is the command.
 */
import {
  type ContainerNetwork,
  DEFAULT_PATH,
  INIT_ANNOTATION,
  newSpec,
  type PortMapping,
  validateSpec,
} from "../base/spec.ts";
import { ExitCode, quote, UserError } from "../base/errors.ts";
import {
  mergeEnv,
  parseEnvEntry,
  parseEnvFile,
  parseLabel,
  parseRestartPolicy,
  type RestartPolicyFlag,
} from "./units.ts";
import { resourcesFromFlags, statsReporter } from "./resources.ts";
import {
  assertNameFree,
  type ContainerConfig,
  findContainer,
  newId,
  ownerTag,
  stateDir,
} from "../container/state.ts";
import {
  parseMountFlag,
  parseTmpfsFlag,
  parseVolumeFlag,
  volumesFromContainer,
  volumesFromRequests,
} from "./mount_args.ts";
import { checkMounts, type MountRequest, resolveMounts } from "../volumes/mounts.ts";
import type { ContainerSpec } from "../base/spec.ts";
import { absolutePath, cgroupParent } from "../base/paths.ts";
import { detectLayout } from "../cgroups/manager.ts";
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

/** Runs `positional` with `opts`; a foreground run ends by throwing the container's ExitCode. */
export async function runAction(
  positional: string[],
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
  const policy = restartPolicy(opts);
  if (policy.name !== "no" && !opts.detach) {
    throw new UserError(
      `--restart ${opts.restart} needs a detached container (-d): a foreground container ends with its mini-docker run`,
    );
  }
  const { spec, meta, defaultSeccomp } = await buildRun(positional, opts);
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
  const { final, status } = await runContainer(spec, meta, {
    thread,
    defaultSeccomp,
    tty: opts.tty === true,
    // As Docker: stdin is the container's with -i; and, so that the original's `run /bin/sh`
    // stays interactive, when it is a terminal. Otherwise the container reads /dev/null, and a
    // `while read` loop around mini-docker keeps its input.
    stdin: opts.interactive === true || Deno.stdin.isTerminal(),
    beforeCleanup: opts.statsReport ? statsReporter(spec.linux.resources) : undefined,
  });
  if (final.oomKilled) console.error(oomMessage(final, status, spec));
  // The exit code is the container's; main.ts exits with it.
  throw new ExitCode(final.exitCode ?? 255);
}

/**
 * What the kernel's OOM killer did, in words: the container itself was killed (its PID 1), or
 * one of its processes was and the container went on to exit with a code of its own. Both are
 * Docker's OOMKilled.
 */
export function oomMessage(
  final: { id: string; name: string; exitCode?: number },
  status: { signal: string | null },
  spec: { linux: { resources: { memory?: { limit?: number } } } },
): string {
  const limit = spec.linux.resources.memory?.limit;
  const within = limit === undefined ? "" : ` (limit ${formatBytes(limit)})`;
  const who = `container ${final.name} (${final.id.slice(0, 12)})`;
  if (status.signal === "SIGKILL") return `mini-docker: ${who} was killed: out of memory${within}`;
  return `mini-docker: ${who} ran out of memory${within}: the kernel's OOM killer killed a process in it, and the container exited with code ${
    final.exitCode ?? 255
  }`;
}

/** The `--restart` flag read, checked against `--rm` (Docker's conflict). */
export function restartPolicy(opts: RunFlags): RestartPolicyFlag {
  const policy = opts.restart === undefined
    ? { name: "no" as const, maximumRetryCount: 0 }
    : parseRestartPolicy(opts.restart);
  if (policy.name !== "no" && opts.rm) {
    throw new UserError(
      `Conflicting options: --restart ${opts.restart} and --rm (a container removed when it exits cannot be started again)`,
    );
  }
  return policy;
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
  /** The image as the user named it (Docker's Config.Image). */
  imageRef?: string;
}

/**
 * Reads the positionals as Docker's IMAGE [COMMAND] [ARG...], keeping the original's form:
 * without --image and --rootfs, a first positional that is an absolute path is a command for
 * the default root filesystem; with either, they are all the command.
 */
export function splitPositional(
  positional: readonly string[],
  opts: Pick<RunFlags, "image" | "rootfs">,
): { image?: string; command: string[] } {
  if (opts.image !== undefined || opts.rootfs !== undefined) {
    return { image: opts.image, command: [...positional] };
  }
  const [first, ...rest] = positional;
  if (first === undefined || first.startsWith("/")) return { command: [...positional] };
  return { image: first, command: rest };
}

async function resolveRoot(opts: RunFlags, image: string | undefined): Promise<RootSource> {
  // Pull progress is for a person at a terminal; in scripts only the outcome counts.
  const log = Deno.stderr.isTerminal() ? (line: string) => console.error(line) : () => {};
  if (image !== undefined) {
    if (opts.rootfs !== undefined) {
      throw new UserError("--image and --rootfs cannot be used together: choose one root");
    }
    const resolved = await (await images()).resolveImage(image, { pull: "missing", log });
    return { layers: resolved.layers, image: resolved, imageRef: image };
  }
  if (opts.rootfs !== undefined) {
    assertRootfs(opts.rootfs);
    return { layers: [absolutePath(opts.rootfs)], rootfs: absolutePath(opts.rootfs) };
  }
  const dir = defaultRootfs();
  if (rootfsStatus(dir) === "ok") return { layers: [absolutePath(dir)], rootfs: absolutePath(dir) };
  // No default rootfs: the default image, pulled where the network allows.
  try {
    const resolved = await (await images()).resolveImage(defaultImage(), { pull: "missing", log });
    return { layers: resolved.layers, image: resolved, imageRef: defaultImage() };
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
  const split = splitPositional(positional, opts);
  if (split.image === undefined && split.command.length === 0 && opts.image === undefined) {
    throw new UserError(
      'No image or command given: "mini-docker run [OPTIONS] IMAGE [COMMAND] [ARG...]", or an absolute COMMAND for the default root filesystem, e.g. /bin/sh',
    );
  }
  if (split.image === "") throw new UserError('Invalid image "": name an image, or a command');
  const resources = resourcesFromFlags(opts);
  const rlimits = opts.ulimit.map(parseUlimit);
  const init = opts.init ? findInit() : undefined;
  const policy = restartPolicy(opts);
  const flagLabels = Object.fromEntries(opts.label.map(parseLabel));
  // The network and mount flags first (bad input is found before an image is pulled); the
  // image's exposed ports and volumes come in below.
  networkFromFlags(opts);
  const privateCgroupns = cgroupnsFromFlag(opts.cgroupns);
  const asked = [
    ...opts.volume.map(parseVolumeFlag),
    ...opts.mount.map(parseMountFlag),
    ...opts.tmpfs.map(parseTmpfsFlag),
  ];
  const inherited = opts.volumesFrom.flatMap(volumesFrom);
  const root = await resolveRoot(opts, split.image);
  const config = root.image?.config ?? {};
  const requests = mountRequests(asked, inherited, Object.keys(config.Volumes ?? {}));
  checkMounts(requests);
  // A name taken is found before any volume is made (createState checks it again, locked).
  if (opts.name !== undefined && requests.length > 0) assertNameFree(opts.name);
  const network = networkFromFlags(opts, Object.keys(config.ExposedPorts ?? {}));
  if (
    network.mode !== "host" && network.mode !== "none" || network.ip !== undefined ||
    network.aliases.length > 0
  ) {
    (await lazy<Networks>("../network/mod.ts", import.meta.url)).checkNetwork(network);
  }

  // Docker's rules: --entrypoint replaces the image's entrypoint and drops its Cmd ('' clears
  // it); arguments after the image replace Cmd.
  const entrypoint = opts.entrypoint === undefined
    ? config.Entrypoint ?? null
    : opts.entrypoint === ""
    ? null
    : [opts.entrypoint];
  const cmd = split.command.length > 0
    ? split.command
    : opts.entrypoint !== undefined
    ? null
    : config.Cmd ?? null;
  const userCommand = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (userCommand.length === 0) {
    throw new UserError(
      `No command given, and image ${
        quote(root.imageRef ?? "")
      } has no Entrypoint or Cmd (or --entrypoint cleared it): pass one`,
    );
  }
  const command = [...(init !== undefined ? [INIT_PATH, "--"] : []), ...userCommand];
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
  // Docker's environment: PATH (unless the image sets one), HOSTNAME, TERM with -t, the image's,
  // the files', the flags'; and unless one of them sets HOME, the user's home, which the
  // container's thread reads from the container's own /etc/passwd (recipe.ts), as runc does.
  const env = mergeEnv(
    [
      `PATH=${DEFAULT_PATH}`,
      `HOSTNAME=${hostname}`,
      ...(opts.tty ? ["TERM=xterm"] : []),
    ],
    config.Env ?? [],
    fileEnv,
    flagEnv,
  );

  const { uid, gid, additionalGids } = user ?? { uid: 0, gid: 0, additionalGids: [] };
  const security = await confinement(opts, { uid }, { deferDefault: true });
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
    user: user === undefined ? undefined : { uid, gid, additionalGids },
    hostname,
    rootPath: `${layerDir}/merged`,
    rootLayers: overlay
      ? { lower: root.layers, upper: `${layerDir}/upper`, work: `${layerDir}/work` }
      : { lower: root.layers },
    hostNetwork: network.mode === "host",
    privateCgroupns,
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
      // Canonical: the container's thread opens it refusing any symlink (container/mounts.ts).
      source: Deno.realPathSync(init),
      options: ["bind", "ro", "nosuid", "nodev"],
    }],
    readonlyRoot: opts.readOnly === true,
    cgroupsPath: `${cgroupParent()}/${id}`,
    annotations: {
      ...(opts.name === undefined ? {} : { "org.mini-docker.name": opts.name }),
      ...(opts.init ? { [INIT_ANNOTATION]: "true" } : {}),
    },
  });
  validateSpec(spec);
  // The mounts last, once nothing else can fail: volumes are created and taken for the container.
  addMounts(spec, resolveMounts(requests, id, ownerTag()));
  const containerConfig: ContainerConfig = {
    entrypoint,
    cmd,
    user: userSpec,
    // Sorted by key, as Docker's maps print.
    labels: Object.fromEntries(
      Object.entries({ ...config.Labels, ...flagLabels }).sort(([a], [b]) => a < b ? -1 : 1),
    ),
    openStdin: opts.interactive === true,
    stdinOnce: opts.interactive === true && !opts.detach,
    tty: opts.tty === true,
    restartPolicy: policy,
  };
  return {
    spec,
    /** Docker's default seccomp profile, for the engine to resolve (see security/policy.ts). */
    defaultSeccomp: security.defaultSeccomp === true,
    meta: {
      id,
      name: opts.name,
      rootfs: root.rootfs,
      image: root.image?.id,
      imageRef: root.imageRef,
      command: userCommand,
      config: containerConfig,
    },
  };
}

/** The binds and volumes of `--volumes-from VALUE`'s container. */
function volumesFrom(value: string): MountRequest[] {
  const ref = volumesFromContainer(value);
  let spec: ContainerSpec;
  try {
    const state = findContainer(ref);
    spec = JSON.parse(Deno.readTextFileSync(`${stateDir(state.id)}/config.json`));
  } catch (err) {
    throw new UserError(
      `Invalid --volumes-from ${JSON.stringify(value)}: ${
        err instanceof UserError ? err.message : `cannot read container "${ref}"`
      }`,
    );
  }
  return volumesFromRequests(value, spec.mountPoints ?? []);
}

/**
 * Docker's precedence: the flags' mounts, then `--volumes-from`'s, then an anonymous volume for
 * each of the image's Volumes, each only where nothing earlier is mounted.
 */
function mountRequests(
  asked: MountRequest[],
  inherited: MountRequest[],
  imageVolumes: string[],
): MountRequest[] {
  const out = [...asked];
  const taken = (target: string) => out.some((r) => r.target === target);
  for (const r of inherited) if (!taken(r.target)) out.push(r);
  for (const path of imageVolumes) {
    const target = absolutePath(path);
    if (target === "/" || taken(target)) continue;
    out.push({
      type: "volume",
      source: "",
      target,
      readonly: false,
      mode: "",
      given: `the image's volume ${target}`,
    });
  }
  return out;
}

/** The user's mounts added to the spec, after the standard ones. */
function addMounts(spec: ContainerSpec, resolved: ReturnType<typeof resolveMounts>): void {
  spec.mounts.push(...resolved.mounts);
  if (resolved.mountPoints.length > 0) spec.mountPoints = resolved.mountPoints;
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

/**
 * `--cgroupns private|host`: whether the container gets a cgroup namespace of its own. Absent,
 * Docker's default: private on a pure cgroup v2 host, host on v1 and hybrid ones.
 */
export function cgroupnsFromFlag(mode: string | undefined): boolean {
  if (mode === undefined) return detectLayout() === "v2";
  if (mode === "private") return true;
  if (mode === "host") return false;
  throw new UserError(`Invalid --cgroupns ${quote(mode)}: use private or host`);
}
