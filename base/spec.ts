/**
 * The container as a value, shaped like the OCI runtime spec (config.json): what to run, in
 * which root, with which namespaces, mounts and limits. Front ends (the `run` command today, an
 * OCI `create` later) build one, `validateSpec` checks it before any work, and the runtime only
 * reads it. Field names follow https://github.com/opencontainers/runtime-spec/blob/main/config.md
 * so that a config.json maps onto it without translation.
 */
import { UserError } from "./errors.ts";

/** OCI `process`. */
export interface Process {
  /** Whether the process gets a pseudo-terminal (`run -t`). */
  terminal: boolean;
  /** argv; `args[0]` is resolved against `PATH` from `env` when it has no slash. */
  args: string[];
  /**
   * The file to execute when it is not `args[0]` (an OCI hook: its `path`, its `args` apart).
   * mini-docker's own: never read from a config.json.
   */
  executable?: string;
  /** `KEY=VALUE` entries, exactly the environment the command receives. */
  env: string[];
  /** Absolute working directory inside the container; created if missing (as Docker). */
  cwd: string;
  /** `umask`: the OCI `process.user.umask` (absent: 0022, Docker's and runc's). */
  user: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  /** OCI `process.capabilities`: names such as "CAP_CHOWN"; absent = none at all. */
  capabilities?: LinuxCapabilities;
  /** Set the process's no_new_privs bit (`--security-opt no-new-privileges`). */
  noNewPrivileges?: boolean;
  /** OCI `process.rlimits`, applied to the command before its first instruction. */
  rlimits?: Rlimit[];
  /** OCI `process.oomScoreAdj`, set before its first instruction. */
  oomScoreAdj?: number;
  /** OCI `process.ioPriority`, as ioprio_set(2) takes it: class << 13 | priority. */
  ioPriority?: number;
  /** OCI `process.scheduler`, as sched_setattr(2) takes it. */
  scheduler?: SchedAttr;
  /** OCI `process.execCPUAffinity` (its `final`, else its `initial`): the CPUs, numbered. */
  cpuAffinity?: number[];
}

/** struct sched_attr's fields (sched_setattr(2)). */
export interface SchedAttr {
  policy: number;
  flags: number;
  nice: number;
  priority: number;
  runtime: number;
  deadline: number;
  period: number;
}

/** struct sched_attr as sched_setattr(2) reads it (SCHED_ATTR_SIZE_VER0, 48 bytes). */
export function schedAttrBytes(a: SchedAttr): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(48);
  const v = new DataView(b.buffer);
  v.setUint32(0, 48, true);
  v.setUint32(4, a.policy, true);
  v.setBigUint64(8, BigInt(a.flags), true);
  v.setInt32(16, a.nice, true);
  v.setUint32(20, a.priority, true);
  v.setBigUint64(24, BigInt(a.runtime), true);
  v.setBigUint64(32, BigInt(a.deadline), true);
  v.setBigUint64(40, BigInt(a.period), true);
  return b;
}

/** A CPU bit mask for sched_setaffinity(2), wide enough for `cpus`. */
export function cpuMask(cpus: readonly number[]): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(Math.max(8, Math.ceil((Math.max(...cpus) + 1) / 64) * 8));
  for (const cpu of cpus) b[cpu >> 3] = (b[cpu >> 3] ?? 0) | (1 << (cpu & 7));
  return b;
}

/** OCI `process.capabilities`. */
export interface LinuxCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable?: string[];
  ambient?: string[];
}

/** OCI `process.rlimits[]`: `type` is a name such as "RLIMIT_NOFILE". */
export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

/** OCI `linux.seccomp`: the filter, with names resolved (what libseccomp is given). */
export interface LinuxSeccomp {
  /** "SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW", "SCMP_ACT_KILL_PROCESS", ... */
  defaultAction: string;
  defaultErrnoRet?: number;
  /** "SCMP_ARCH_X86_64", ...; absent = the native architecture only. */
  architectures?: string[];
  /** "SECCOMP_FILTER_FLAG_LOG", ... */
  flags?: string[];
  syscalls?: LinuxSyscall[];
}

/** OCI `linux.seccomp.syscalls[]`. */
export interface LinuxSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}

/** OCI `linux.resources.devices[]`: one device cgroup rule, applied in order. */
export interface LinuxDeviceCgroup {
  allow: boolean;
  /** "c", "b" or "a" (all); absent = all. */
  type?: "c" | "b" | "a";
  /** absent or -1 = any. */
  major?: number;
  minor?: number;
  /** Some of "rwm"; absent = "rwm". */
  access?: string;
}

/** OCI `root`: the directory that becomes `/`. */
export interface Root {
  path: string;
  readonly: boolean;
}

/** OCI `mounts[]`. `options` are mount(8) words: ro, nosuid, nodev, noexec, bind, rbind, mode=... */
export interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
  /**
   * mini-docker extension, for a volume's bind: when the volume is empty, it is first filled
   * with what the container's root holds at `destination` (Docker's copy-up of a volume).
   */
  copyUp?: boolean;
}

/**
 * mini-docker extension: a mount the user asked for (`-v`, `--mount`, `--tmpfs`, the image's
 * Volumes, `--volumes-from`), in Docker's MountPoint shape, as `inspect` shows it.
 */
export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs";
  /** The volume's name (volumes only). */
  Name?: string;
  /** The host path (a volume's `_data` directory); "" for tmpfs. */
  Source: string;
  Destination: string;
  /** "local" for volumes. */
  Driver?: string;
  /** The mode words as given ("ro", "z", ...), Docker's Mode. */
  Mode: string;
  RW: boolean;
  /** "rprivate" unless asked otherwise; "" for volumes and tmpfs, as Docker shows them. */
  Propagation: string;
  /** An anonymous volume (removed with its container by `rm -v` or `--rm`). */
  Anonymous?: boolean;
}

export type NamespaceType = "pid" | "mount" | "uts" | "ipc" | "network" | "cgroup" | "user";

/** OCI `linux.namespaces[]`; a `path` means join that namespace instead of creating one. */
export interface Namespace {
  type: NamespaceType;
  path?: string;
}

/** OCI `linux.uidMappings[]` / `gidMappings[]`: `size` ids from `containerID` are `hostID` on. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/**
 * The host's id for a container's `id` under `mappings` (a container without a user namespace:
 * the id itself; an id the mappings leave out: undefined, as the kernel's "overflow" id).
 */
export function hostId(mappings: readonly IdMapping[] | undefined, id: number): number | undefined {
  if (mappings === undefined) return id;
  const m = mappings.find((m) => id >= m.containerID && id - m.containerID < m.size);
  return m === undefined ? undefined : m.hostID + (id - m.containerID);
}

/** Why user `uid`:`gid` cannot be the process's in the spec's user namespace, or undefined. */
export function unmappedUser(spec: ContainerSpec, uid: number, gid: number): string | undefined {
  const { uidMappings, gidMappings } = spec.linux;
  if (uidMappings === undefined) return undefined;
  for (const [kind, id, maps] of [["uid", uid, uidMappings], ["gid", gid, gidMappings]] as const) {
    if (hostId(maps ?? [], id) === undefined) {
      return `User ${uid}:${gid}: ${kind} ${id} has no id on the host in the container's user namespace (linux.${kind}Mappings)`;
    }
  }
  return undefined;
}

/** OCI `linux.devices[]`: device nodes created in the container's /dev. */
export interface Device {
  path: string;
  type: "c" | "b" | "p";
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** OCI `linux.resources` (the subset mini-docker applies); absent fields mean "no limit". */
export interface LinuxResources {
  memory?: {
    /** Hard limit in bytes. */
    limit?: number;
    /** Soft limit in bytes. */
    reservation?: number;
    /** Memory plus swap in bytes; -1 = unlimited. */
    swap?: number;
  };
  cpu?: {
    /** Relative weight (cgroup v1 `cpu.shares`). */
    shares?: number;
    /** CFS quota in microseconds per `period`. */
    quota?: number;
    /** CFS period in microseconds. */
    period?: number;
    /** CPUs the container may run on, as "0-3,5". */
    cpus?: string;
    /** Memory nodes, as "0-1". */
    mems?: string;
  };
  pids?: {
    /** Maximum number of tasks; -1 = unlimited. */
    limit: number;
  };
  /** Device access rules (cgroup v1 `devices`, v2 a BPF program), in order; absent = no rules. */
  devices?: LinuxDeviceCgroup[];
}

/**
 * mini-docker's extension to the OCI root: the layers that are assembled into `root.path`
 * before pivot_root (an overlayfs of read-only lower dirs plus the container's own upper dir).
 * An OCI bundle has its root ready; images and the default rootfs need this step.
 */
export interface RootLayers {
  /** Read-only layers, top-most first (overlayfs `lowerdir` order). */
  lower: string[];
  /** The container's writable layer; absent = read-only root with tmpfs scratch space. */
  upper?: string;
  work?: string;
}

/** A published port (`-p`): a host address and port forwarded to the container's port. */
export interface PortMapping {
  /** The host address it is published on; "" = every address of the host. */
  hostIp: string;
  /** The host port; 0 = a free one, chosen when the container starts. */
  hostPort: number;
  containerPort: number;
  protocol: "tcp" | "udp";
}

/** mini-docker extension: the container's network, as Docker's `run` flags set it. */
export interface ContainerNetwork {
  /** "bridge" (the default network), "host", "none", or the name of a user-defined network. */
  mode: string;
  /** `--network-alias`: more names that the network's DNS resolves to the container. */
  aliases: string[];
  /** `--ip`: the container's address on a user-defined network; absent = the next free one. */
  ip?: string;
  /** `-p`, and with `-P` every exposed port on a free host port. */
  ports: PortMapping[];
  /** `-P` was given. */
  publishAll: boolean;
  /** The image's ExposedPorts and `--expose`, as "80/tcp". */
  exposedPorts: string[];
  /** `--dns`: the container's name servers (the upstreams of a network with its own DNS). */
  dns: string[];
  /** `--add-host NAME:IP` lines for /etc/hosts. */
  extraHosts: string[];
}

/** The container, OCI-shaped. */
export interface ContainerSpec {
  ociVersion: string;
  process: Process;
  root: Root;
  /** "" (OCI bundles only): not set, the UTS namespace keeps the name it starts with. */
  hostname: string;
  /** OCI `domainname` (OCI bundles): the UTS namespace's NIS domain name. */
  domainname?: string;
  mounts: Mount[];
  linux: {
    namespaces: Namespace[];
    devices: Device[];
    resources: LinuxResources;
    /** Relative cgroup path, "mini-docker/<id>". */
    cgroupsPath: string;
    maskedPaths: string[];
    readonlyPaths: string[];
    /** The system call filter; absent = none (`--security-opt seccomp=unconfined`). */
    seccomp?: LinuxSeccomp;
    /**
     * OCI `linux.sysctl`: namespaced kernel parameters ("net.ipv4.ip_forward": "1"), written
     * by the container's thread once it is in its new namespaces.
     */
    sysctl?: Record<string, string>;
    /**
     * OCI `linux.rootfsPropagation` (private, shared, slave, unbindable, each also "r"-prefixed):
     * the container's root mount's propagation once its mounts are made. Absent: a recursive
     * slave of the host's mounts, as the root always starts.
     */
    rootfsPropagation?: string;
    /**
     * OCI `linux.uidMappings` and `gidMappings`, with a new user namespace (OCI bundles): the
     * container's ids as the host sees them.
     */
    uidMappings?: IdMapping[];
    gidMappings?: IdMapping[];
    /** OCI `linux.personality`, as personality(2) takes it (PER_LINUX, PER_LINUX32). */
    personality?: number;
  };
  /** Free-form metadata, as OCI annotations ("org.mini-docker.name" etc.). */
  annotations: Record<string, string>;
  /** mini-docker extension: how `root.path` is assembled (see RootLayers). */
  rootLayers?: RootLayers;
  /** mini-docker extension: the network (absent: the host's, as before networks existed). */
  network?: ContainerNetwork;
  /** mini-docker extension: the user's mounts, as Docker's inspect shows them (`Mounts`). */
  mountPoints?: MountPoint[];
}

/** The annotation that records `run --init` (shown by inspect). */
export const INIT_ANNOTATION = "org.mini-docker.init";

/** The PATH of a container whose image does not set one (Docker's default). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Device nodes of every container (the OCI default set; /dev/console only with a terminal). */
const DEFAULT_DEVICES: [string, number, number][] = [
  ["/dev/null", 1, 3],
  ["/dev/zero", 1, 5],
  ["/dev/full", 1, 7],
  ["/dev/random", 1, 8],
  ["/dev/urandom", 1, 9],
  ["/dev/tty", 5, 0],
];

/** The device nodes every container gets (the OCI default set), as `linux.devices` entries. */
export function defaultDevices(): Device[] {
  return DEFAULT_DEVICES.map(([path, major, minor]): Device => ({
    path,
    type: "c",
    major,
    minor,
    fileMode: 0o666,
    uid: 0,
    gid: 0,
  }));
}

/**
 * What the kernel should not show a container: Docker's list (moby's oci/defaults.go), with
 * each CPU's thermal_throttle directory where the host has one.
 */
export function maskedPaths(): string[] {
  const paths = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
  ];
  try {
    for (const e of Deno.readDirSync("/sys/devices/system/cpu")) {
      const path = `/sys/devices/system/cpu/${e.name}/thermal_throttle`;
      if (!/^cpu\d+$/.test(e.name)) continue;
      try {
        Deno.statSync(path);
        paths.push(path);
      } catch { /* none on this CPU */ }
    }
  } catch { /* no sysfs */ }
  return paths;
}

const READONLY_PATHS = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/** What a front end decides; everything else gets the defaults of `newSpec`. */
export interface SpecOptions {
  args: string[];
  env: string[];
  cwd: string;
  hostname: string;
  rootPath: string;
  rootLayers?: RootLayers;
  /** Share the host's network namespace (`--network host`) instead of a new one. */
  hostNetwork: boolean;
  /** A cgroup namespace of its own (`--cgroupns private`): its cgroup is its "/". */
  privateCgroupns?: boolean;
  /** The network settings (`--network`, `-p`, `--dns`, ...). */
  network?: ContainerNetwork;
  resources: LinuxResources;
  cgroupsPath: string;
  user?: Process["user"];
  terminal?: boolean;
  /** Extra mounts, after the standard ones (e.g. /etc/hostname binds). */
  mounts?: Mount[];
  /** The user's mounts in Docker's shape (for inspect). */
  mountPoints?: MountPoint[];
  /** `--read-only`: the root mounted read-only (mounts of the user's stay as they are). */
  readonlyRoot?: boolean;
  annotations?: Record<string, string>;
  /** The process's capabilities; absent: none at all. */
  capabilities?: LinuxCapabilities;
  noNewPrivileges?: boolean;
  rlimits?: Rlimit[];
  seccomp?: LinuxSeccomp;
  /** Device nodes beyond the standard ones (`--device`, `--privileged`). */
  devices?: Device[];
  /** The device cgroup rules (absent: no rules, every device usable). */
  deviceRules?: LinuxDeviceCgroup[];
  /** `--privileged`: no masked or read-only paths. */
  unmasked?: boolean;
}

/** A complete spec with the standard namespaces, mounts, devices and masked paths. */
export function newSpec(o: SpecOptions): ContainerSpec {
  const namespaces: Namespace[] = [{ type: "pid" }, { type: "mount" }, { type: "uts" }, {
    type: "ipc",
  }];
  if (!o.hostNetwork) namespaces.push({ type: "network" });
  if (o.privateCgroupns) namespaces.push({ type: "cgroup" });
  const readonlyRoot = o.rootLayers !== undefined && o.rootLayers.upper === undefined;
  const scratch: Mount[] = readonlyRoot
    ? ["/tmp", "/run", "/var/tmp"].map((destination) => ({
      destination,
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "mode=1777"],
    }))
    : [];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: o.terminal ?? false,
      args: o.args,
      env: o.env,
      cwd: o.cwd,
      user: o.user ?? { uid: 0, gid: 0 },
      ...(o.capabilities !== undefined && { capabilities: o.capabilities }),
      ...(o.noNewPrivileges && { noNewPrivileges: true }),
      ...(o.rlimits !== undefined && o.rlimits.length > 0 && { rlimits: o.rlimits }),
    },
    root: { path: o.rootPath, readonly: readonlyRoot || o.readonlyRoot === true },
    hostname: o.hostname,
    mounts: [
      {
        destination: "/proc",
        type: "proc",
        source: "proc",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      },
      ...scratch,
      ...(o.mounts ?? []),
    ],
    linux: {
      namespaces,
      devices: [...defaultDevices(), ...(o.devices ?? [])],
      resources: o.deviceRules === undefined
        ? o.resources
        : { ...o.resources, devices: o.deviceRules },
      cgroupsPath: o.cgroupsPath,
      maskedPaths: o.unmasked ? [] : maskedPaths(),
      readonlyPaths: o.unmasked ? [] : READONLY_PATHS,
      ...(o.seccomp !== undefined && { seccomp: o.seccomp }),
    },
    annotations: o.annotations ?? {},
    rootLayers: o.rootLayers,
    ...(o.network !== undefined && { network: o.network }),
    ...(o.mountPoints !== undefined && o.mountPoints.length > 0 && { mountPoints: o.mountPoints }),
  };
}

/** Checks what the kernel would reject later, so that errors come before any work. */
export function validateSpec(spec: ContainerSpec, options: { oci?: boolean } = {}): void {
  const fail = (msg: string) => {
    throw new UserError(msg);
  };
  if (spec.process.args.length === 0 || spec.process.args[0] === "") {
    fail("No command given: pass the command to run after the options, e.g. /bin/sh");
  }
  if (!spec.process.cwd.startsWith("/")) {
    fail(`Invalid working directory "${spec.process.cwd}": it must be an absolute path`);
  }
  const unset = options.oci === true && spec.hostname === "";
  if (!unset && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(spec.hostname)) {
    fail(
      `Invalid hostname ${
        JSON.stringify(spec.hostname)
      }: use 1 to 63 letters, digits, dots or dashes, starting with a letter or digit`,
    );
  }
  for (const e of spec.process.env) {
    if (!e.includes("=") || e.startsWith("=")) {
      fail(`Invalid environment entry "${e}": expected KEY=VALUE`);
    }
    if (e.includes("\0")) {
      fail(`Invalid environment entry "${e.split("\0")[0]}": it contains a NUL byte`);
    }
  }
  for (const a of spec.process.args) {
    if (a.includes("\0")) fail(`Invalid argument "${a.split("\0")[0]}": it contains a NUL byte`);
  }
  for (const m of spec.mounts) {
    if (!m.destination.startsWith("/")) {
      fail(`Invalid mount destination "${m.destination}": it must be absolute`);
    }
  }
  const r = spec.linux.resources;
  const swap = swapProblem(r.memory);
  if (swap !== undefined) fail(swap);
  const user = spec.linux.namespaces.find((ns) => ns.type === "user");
  const mapped = spec.linux.uidMappings !== undefined || spec.linux.gidMappings !== undefined;
  if (user?.path !== undefined) {
    fail(
      `Joining the user namespace "${user.path}" is not supported: a container's user namespace is its own (remove its path)`,
    );
  }
  if (user !== undefined && !(spec.linux.uidMappings?.length && spec.linux.gidMappings?.length)) {
    fail(
      "A new user namespace needs linux.uidMappings and linux.gidMappings (its ids on the host)",
    );
  }
  if (user === undefined && mapped) {
    fail('linux.uidMappings and gidMappings need a new "user" namespace (linux.namespaces)');
  }
  if (user !== undefined) {
    const { uid, gid } = spec.process.user;
    const problem = unmappedUser(spec, uid, gid);
    if (problem !== undefined) fail(problem);
  }
  if (!spec.linux.namespaces.some((ns) => ns.type === "mount")) {
    // Its mounts are made in the host's mount namespace, below its root (OCI bundles, as runc).
    const why = spec.linux.namespaces.some((ns) => ns.type === "pid")
      ? "a PID namespace (its /proc is mounted by the runtime, which has the host's)"
      : user !== undefined
      ? "a user namespace"
      : spec.linux.rootfsPropagation !== undefined
      ? "linux.rootfsPropagation"
      : undefined;
    if (why !== undefined) {
      fail(
        `A container without a mount namespace of its own cannot have ${why}: add a "mount" namespace`,
      );
    }
  }
  if (user !== undefined && Deno.build.arch !== "x86_64") {
    // base/clone.ts: the machine code that starts a process in a new user namespace.
    fail(`A new user namespace is supported on x86-64 only so far, not ${Deno.build.arch}`);
  }
  for (const l of spec.process.rlimits ?? []) {
    if (!/^RLIMIT_[A-Z]+$/.test(l.type)) fail(`Invalid rlimit type "${l.type}"`);
    if (l.hard >= 0 && (l.soft < 0 || l.soft > l.hard)) {
      fail(`Invalid rlimit ${l.type}: the soft limit ${l.soft} is above the hard limit ${l.hard}`);
    }
  }
  if (r.memory?.limit !== undefined && r.memory.limit <= 0) {
    fail(`Invalid memory limit ${r.memory.limit}: it must be positive`);
  }
  if (r.cpu?.quota !== undefined && (r.cpu.quota < 1000 || (r.cpu.period ?? 100000) < 1000)) {
    fail(`Invalid CPU quota ${r.cpu.quota}: the minimum is 1000 microseconds per period`);
  }
  const net = spec.network;
  if (net !== undefined) {
    const own = spec.linux.namespaces.some((ns) => ns.type === "network");
    if ((net.mode === "host") === own) {
      fail(`Invalid network mode "${net.mode}": it does not match the spec's namespaces`);
    }
    for (const p of net.ports) {
      const port = (n: number, min: number) => Number.isInteger(n) && n >= min && n <= 65535;
      if (!port(p.containerPort, 1) || !port(p.hostPort, 0) || !/^(tcp|udp)$/.test(p.protocol)) {
        fail(`Invalid port mapping ${JSON.stringify(p)}`);
      }
    }
    if ((net.mode === "host" || net.mode === "none") && net.ports.length > 0) {
      fail(
        `Cannot publish ports with --network ${net.mode}: the container has no network of its own to forward them to`,
      );
    }
  }
}

/**
 * The memory+swap rules (Docker's and runc's): a swap limit other than -1 needs a memory limit
 * and cannot be smaller than it. The problem, in the flags' terms, or undefined.
 */
export function swapProblem(
  memory: LinuxResources["memory"],
  shown?: { swap?: string; memory?: string },
): string | undefined {
  const swap = memory?.swap;
  if (swap === undefined || swap === -1) return undefined;
  const limit = memory?.limit;
  const swapText = shown?.swap ?? String(swap);
  if (limit === undefined || limit < 0) {
    return `Invalid --memory-swap "${swapText}": it needs --memory (memory plus swap includes the memory limit)`;
  }
  if (swap < limit) {
    return `Invalid --memory-swap "${swapText}": minimum memoryswap limit should be larger than memory limit (--memory "${
      shown?.memory ?? limit
    }")`;
  }
  return undefined;
}
