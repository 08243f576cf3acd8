/**
 * An OCI bundle's config.json (runtime spec 1.0/1.1, as containerd, Podman and `runc spec`
 * write it) read into mini-docker's ContainerSpec, which is OCI-shaped already: most fields are
 * taken as they are. Every field the spec defines that mini-docker does not apply is refused
 * with one line naming it, before anything is made; property names the spec does not define are
 * ignored, as the spec requires of a runtime.
 */
import {
  type ContainerSpec,
  defaultDevices,
  type Device,
  type IdMapping,
  type LinuxDeviceCgroup,
  type LinuxResources,
  type LinuxSeccomp,
  type Mount,
  type Namespace,
  type NamespaceType,
  type SchedAttr,
  validateSpec,
} from "../../base/spec.ts";
import { UserError } from "../../base/errors.ts";
import * as libc from "../../base/libc.ts";
import { absolutePath } from "../../base/paths.ts";
import { capabilityNumber } from "../../security/capabilities.ts";
import { HOOK_KINDS, hooksOf } from "./hooks.ts";
import { PROPAGATION } from "../../container/mounts.ts";

/** A refusal: one line naming the field and why, exit code 1 as runc's errors. */
export class ConfigError extends UserError {
  constructor(field: string, why: string) {
    super(`config.json: ${field}: ${why}`, 1);
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** The namespaces mini-docker creates or joins. */
const NAMESPACES: readonly NamespaceType[] = [
  "pid",
  "network",
  "mount",
  "ipc",
  "uts",
  "cgroup",
  "user",
];

/** The device cgroup rules runc adds after a bundle's own (its AllowedDevices). */
const ALLOWED_DEVICES: LinuxDeviceCgroup[] = [
  { allow: true, type: "c", major: -1, minor: -1, access: "m" },
  { allow: true, type: "b", major: -1, minor: -1, access: "m" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 8, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 7, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 0, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 5, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 9, access: "rwm" },
  { allow: true, type: "c", major: 136, minor: -1, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" },
];

/** Mount options whose effect mini-docker does not apply (recursive attributes, idmaps). */
const REFUSED_MOUNT_OPTIONS = new Set([
  "tmpcopyup",
  "idmap",
  "ridmap",
  "nosymfollow",
  "symfollow",
  "rro",
  "rrw",
  "rnosuid",
  "rsuid",
  "rnodev",
  "rdev",
  "rnoexec",
  "rexec",
  "rnoatime",
  "ratime",
  "rrelatime",
  "rnorelatime",
  "rstrictatime",
  "rnostrictatime",
  "rnodiratime",
  "rdiratime",
  "rnosymfollow",
  "rsymfollow",
]);

/** What `create` needs besides the spec. */
export interface BundleConfig {
  spec: ContainerSpec;
  /** The bundle's config as read (its annotations are the state's). */
  raw: Json;
  /** What was given but cannot take effect, as runc warns of it (for the log). */
  warnings: string[];
}

/** Reads `<bundle>/config.json`. */
export function readBundle(bundle: string, id: string): BundleConfig {
  const dir = absolutePath(bundle);
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dir}/config.json`);
  } catch (err) {
    throw new UserError(`cannot read ${dir}/config.json: ${(err as Error).message}`, 1);
  }
  let raw: Json;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${dir}/config.json is not JSON: ${(err as Error).message}`, 1);
  }
  const warnings: string[] = [];
  return { spec: toSpec(raw, dir, id, warnings), raw, warnings };
}

/** Whether a value is absent or empty (`{}`, `[]`, `""`, null): such a field asks for nothing. */
function empty(v: Json): boolean {
  if (v === undefined || v === null || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.values(v).every(empty);
  return false;
}

function refuseIfSet(obj: Json, prefix: string, fields: string[], why: string): void {
  for (const f of fields) {
    if (obj !== undefined && obj !== null && !empty(obj[f])) {
      throw new ConfigError(`${prefix}${f}`, why);
    }
  }
}

function int(v: Json, field: string, min = -Infinity): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new ConfigError(field, `expected an integer${min > -Infinity ? ` >= ${min}` : ""}`);
  }
  return v;
}

function strings(v: Json, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new ConfigError(field, "expected an array of strings");
  }
  return v;
}

/** config.json -> ContainerSpec; `bundle` is absolute. */
export function toSpec(
  c: Json,
  bundle: string,
  id: string,
  warnings: string[] = [],
): ContainerSpec {
  if (typeof c !== "object" || c === null) throw new ConfigError("(top)", "expected an object");
  if (typeof c.ociVersion !== "string" || !/^1\.[0-9]+\.[0-9]+/.test(c.ociVersion)) {
    throw new ConfigError("ociVersion", `"${c.ociVersion}" is not a 1.x version of the spec`);
  }
  const unsupported = "not supported by mini-docker";
  for (const kind of HOOK_KINDS) hooksOf(c.hooks, kind);
  refuseIfSet(c, "", ["solaris", "windows", "vm", "zos"], "not a Linux container");
  const p = c.process;
  if (typeof p !== "object" || p === null) {
    throw new ConfigError("process", "missing: mini-docker runs a container's process");
  }
  refuseIfSet(p, "process.", ["apparmorProfile"], `AppArmor is ${unsupported}`);
  refuseIfSet(p, "process.", ["selinuxLabel"], `SELinux is ${unsupported}`);
  refuseIfSet(p, "process.", ["commandLine"], "Windows only");
  const args = strings(p.args, "process.args");
  if (args.length === 0) throw new ConfigError("process.args", "missing: give the command to run");
  if (typeof p.cwd !== "string" || !p.cwd.startsWith("/")) {
    throw new ConfigError("process.cwd", "must be an absolute path");
  }
  const u = p.user ?? {};
  const umask = u.umask === undefined || u.umask === null
    ? undefined
    : int(u.umask, "process.user.umask", 0);
  if (umask !== undefined && umask > 0o777) {
    throw new ConfigError("process.user.umask", `${umask} is not a umask (at most 511, 0777)`);
  }
  refuseIfSet(u, "process.user.", ["username"], "Windows only");
  const user = {
    uid: int(u.uid ?? 0, "process.user.uid", 0),
    gid: int(u.gid ?? 0, "process.user.gid", 0),
    additionalGids: (u.additionalGids ?? []).map((g: Json, i: number) =>
      int(g, `process.user.additionalGids[${i}]`, 0)
    ),
    ...(umask !== undefined && { umask }),
  };
  const caps = p.capabilities ?? undefined;
  if (caps !== undefined) {
    for (const set of ["bounding", "effective", "permitted", "inheritable", "ambient"]) {
      for (const name of strings(caps[set], `process.capabilities.${set}`)) {
        if (capabilityNumber(name) === undefined) {
          throw new ConfigError(`process.capabilities.${set}`, `unknown capability "${name}"`);
        }
      }
    }
  }
  const rlimits = (p.rlimits ?? []).map((r: Json, i: number) => {
    const field = `process.rlimits[${i}]`;
    if (typeof r?.type !== "string") throw new ConfigError(`${field}.type`, "missing");
    if (!(r.type in libc.RLIMITS)) {
      throw new ConfigError(`${field}.type`, `"${r.type}" is not a resource limit of Linux`);
    }
    // Go's uint64: 2^64-1 (RLIM_INFINITY) arrives as a number above 2^53.
    const value = (v: Json, f: string) =>
      typeof v === "number" && v >= 2 ** 63 ? -1 : int(v, `${field}.${f}`, 0);
    return { type: r.type, soft: value(r.soft, "soft"), hard: value(r.hard, "hard") };
  });
  const terminal = p.terminal === true;
  if (!empty(p.consoleSize) && !terminal) {
    throw new ConfigError("process.consoleSize", "needs process.terminal");
  }

  const root = c.root;
  if (typeof root?.path !== "string" || root.path === "") {
    throw new ConfigError("root.path", "missing: the bundle's root filesystem");
  }
  const rootPath = absolutePath(root.path.startsWith("/") ? root.path : `${bundle}/${root.path}`);
  try {
    if (!Deno.statSync(rootPath).isDirectory) throw new Error("not a directory");
  } catch (err) {
    throw new ConfigError("root.path", `"${rootPath}": ${(err as Error).message}`);
  }

  const l = c.linux ?? {};
  const uidMappings = readMappings(l.uidMappings, "linux.uidMappings");
  const gidMappings = readMappings(l.gidMappings, "linux.gidMappings");
  refuseIfSet(l, "linux.", ["timeOffsets"], `time namespaces are ${unsupported}`);
  refuseIfSet(l, "linux.", ["intelRdt"], `Intel RDT is ${unsupported}`);
  refuseIfSet(l, "linux.", ["mountLabel"], `SELinux is ${unsupported}`);
  const propagation = l.rootfsPropagation ?? "";
  if (propagation !== "" && !(propagation in PROPAGATION)) {
    throw new ConfigError(
      "linux.rootfsPropagation",
      `"${propagation}": expected one of ${Object.keys(PROPAGATION).join(", ")}`,
    );
  }
  const namespaces = readNamespaces(l.namespaces);
  const hostname = typeof c.hostname === "string" ? c.hostname : "";
  const domainname = typeof c.domainname === "string" ? c.domainname : "";
  if (domainname !== "" && !namespaces.some((n) => n.type === "uts")) {
    throw new ConfigError("domainname", "needs a UTS namespace (linux.namespaces)");
  }
  if (hostname !== "" && !namespaces.some((n) => n.type === "uts")) {
    throw new ConfigError("hostname", "needs a UTS namespace (linux.namespaces)");
  }
  const cgroupsPath = readCgroupsPath(l.cgroupsPath, id);
  const sysctl = readSysctl(l.sysctl, namespaces);

  const mounts = (c.mounts ?? []).map((m: Json, i: number) => readMount(m, i, bundle));
  const devices: Device[] = defaultDevices();
  (l.devices ?? []).forEach((d: Json, i: number) => {
    const field = `linux.devices[${i}]`;
    if (typeof d?.path !== "string" || !d.path.startsWith("/dev/")) {
      throw new ConfigError(`${field}.path`, "must be a path under /dev");
    }
    if (!["c", "b", "u", "p"].includes(d.type)) {
      throw new ConfigError(`${field}.type`, `"${d.type}": expected c, b, u or p`);
    }
    const device: Device = {
      path: d.path,
      type: d.type === "u" ? "c" : d.type,
      major: d.type === "p" ? 0 : int(d.major, `${field}.major`, 0),
      minor: d.type === "p" ? 0 : int(d.minor, `${field}.minor`, 0),
      fileMode: d.fileMode === undefined ? 0o666 : int(d.fileMode, `${field}.fileMode`, 0),
      uid: d.uid === undefined ? 0 : int(d.uid, `${field}.uid`, 0),
      gid: d.gid === undefined ? 0 : int(d.gid, `${field}.gid`, 0),
    };
    const at = devices.findIndex((e) => e.path === device.path);
    if (at >= 0) devices[at] = device;
    else devices.push(device);
  });

  const spec: ContainerSpec = {
    ociVersion: c.ociVersion,
    process: {
      terminal,
      args,
      env: strings(p.env, "process.env"),
      cwd: p.cwd,
      user,
      ...(caps !== undefined && {
        capabilities: {
          bounding: strings(caps.bounding, "process.capabilities.bounding"),
          effective: strings(caps.effective, "process.capabilities.effective"),
          permitted: strings(caps.permitted, "process.capabilities.permitted"),
          inheritable: strings(caps.inheritable, "process.capabilities.inheritable"),
          ambient: ambient(caps, warnings),
        },
      }),
      ...(p.noNewPrivileges === true && { noNewPrivileges: true }),
      ...(rlimits.length > 0 && { rlimits }),
      ...(p.oomScoreAdj !== undefined && p.oomScoreAdj !== null && {
        oomScoreAdj: int(p.oomScoreAdj, "process.oomScoreAdj", -1000),
      }),
      ...readProcessScheduling(p),
    },
    root: { path: rootPath, readonly: root.readonly === true },
    hostname,
    ...(domainname !== "" && { domainname }),
    mounts,
    linux: {
      namespaces,
      devices,
      resources: readResources(l.resources ?? {}),
      cgroupsPath,
      maskedPaths: strings(l.maskedPaths, "linux.maskedPaths"),
      readonlyPaths: strings(l.readonlyPaths, "linux.readonlyPaths"),
      ...(l.seccomp !== undefined && l.seccomp !== null && { seccomp: readSeccomp(l.seccomp) }),
      ...(Object.keys(sysctl).length > 0 && { sysctl }),
      ...(propagation !== "" && { rootfsPropagation: propagation }),
      ...(uidMappings !== undefined && { uidMappings }),
      ...(gidMappings !== undefined && { gidMappings }),
      ...(l.personality !== undefined && l.personality !== null &&
        { personality: readPersonality(l.personality) }),
    },
    annotations: c.annotations ?? {},
  };
  try {
    validateSpec(spec, { oci: true });
  } catch (err) {
    throw new UserError(`config.json: ${(err as Error).message}`, 1);
  }
  return spec;
}

/** OCI `linux.personality`: its domain (runc's too: no flags). */
function readPersonality(v: Json): number {
  const domains: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };
  if (!(v?.domain in domains)) {
    throw new ConfigError("linux.personality.domain", `"${v?.domain}": expected LINUX or LINUX32`);
  }
  if (Array.isArray(v.flags) && v.flags.length > 0) {
    throw new ConfigError(
      "linux.personality.flags",
      "not supported by mini-docker (runc has none)",
    );
  }
  return domains[v.domain]!;
}

const IOPRIO_CLASSES: Record<string, number> = {
  IOPRIO_CLASS_RT: 1,
  IOPRIO_CLASS_BE: 2,
  IOPRIO_CLASS_IDLE: 3,
};

/** sched(7)'s policies that a process can have and pass on to its children. */
const POLICIES: Record<string, number> = {
  SCHED_OTHER: 0,
  SCHED_FIFO: 1,
  SCHED_RR: 2,
  SCHED_BATCH: 3,
  SCHED_IDLE: 5,
};

const SCHED_FLAGS: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01,
  SCHED_FLAG_RECLAIM: 0x02,
  SCHED_FLAG_DL_OVERRUN: 0x04,
  SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10,
};

/** OCI `process.ioPriority`, `scheduler` and `execCPUAffinity`. */
function readProcessScheduling(p: Json) {
  const out: { ioPriority?: number; scheduler?: SchedAttr; cpuAffinity?: number[] } = {};
  if (p.ioPriority !== undefined && p.ioPriority !== null) {
    const io = p.ioPriority;
    if (!(io.class in IOPRIO_CLASSES)) {
      throw new ConfigError(
        "process.ioPriority.class",
        `"${io.class}": expected one of ${Object.keys(IOPRIO_CLASSES).join(", ")}`,
      );
    }
    const priority = int(io.priority ?? 0, "process.ioPriority.priority", 0);
    if (priority > 7) throw new ConfigError("process.ioPriority.priority", "at most 7");
    out.ioPriority = (IOPRIO_CLASSES[io.class]! << 13) | priority;
  }
  if (p.scheduler !== undefined && p.scheduler !== null) {
    const s = p.scheduler;
    if (s.policy === "SCHED_DEADLINE" || s.policy === "SCHED_ISO") {
      throw new ConfigError(
        "process.scheduler.policy",
        `${s.policy} is not supported by mini-docker (a deadline task cannot start a process; Linux has no SCHED_ISO)`,
      );
    }
    if (!(s.policy in POLICIES)) {
      throw new ConfigError(
        "process.scheduler.policy",
        `"${s.policy}": expected one of ${Object.keys(POLICIES).join(", ")}`,
      );
    }
    let flags = 0;
    for (const f of strings(s.flags, "process.scheduler.flags")) {
      if (!(f in SCHED_FLAGS)) {
        throw new ConfigError("process.scheduler.flags", `"${f}" is not supported by mini-docker`);
      }
      flags |= SCHED_FLAGS[f]!;
    }
    const nice = int(s.nice ?? 0, "process.scheduler.nice", -20);
    if (nice > 19) throw new ConfigError("process.scheduler.nice", "at most 19");
    out.scheduler = {
      policy: POLICIES[s.policy]!,
      flags,
      nice,
      priority: int(s.priority ?? 0, "process.scheduler.priority", 0),
      runtime: 0,
      deadline: 0,
      period: 0,
    };
  }
  const affinity = p.execCPUAffinity;
  if (affinity !== undefined && affinity !== null) {
    // The process's own CPUs once it runs ("final"); "initial" is the runtime's while it joins.
    const list = affinity.final ?? affinity.initial;
    if (typeof list !== "string") {
      throw new ConfigError("process.execCPUAffinity", "expected initial or final, a CPU list");
    }
    out.cpuAffinity = cpuList(list, "process.execCPUAffinity");
  }
  return out;
}

/** A CPU list as cpuset writes it: "0-3,7". */
function cpuList(text: string, field: string): number[] {
  const cpus: number[] = [];
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (m === null) throw new ConfigError(field, `"${text}" is not a CPU list such as 0-3,7`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to > 8191) throw new ConfigError(field, `"${part}": not a CPU range`);
    for (let cpu = from; cpu <= to; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/**
 * The ambient capabilities that can be raised: the kernel takes only those both permitted and
 * inheritable, and runc warns of the others and goes on (its `runc spec` asks for three ambient
 * capabilities that are not inheritable): so does mini-docker.
 */
function ambient(caps: Json, warnings: string[]): string[] {
  const permitted = strings(caps.permitted, "process.capabilities.permitted");
  const inheritable = strings(caps.inheritable, "process.capabilities.inheritable");
  const out: string[] = [];
  for (const name of strings(caps.ambient, "process.capabilities.ambient")) {
    if (permitted.includes(name) && inheritable.includes(name)) out.push(name);
    else {
      warnings.push(
        `process.capabilities.ambient: ${name} is not raised: it is not both permitted and inheritable`,
      );
    }
  }
  return out;
}

/** The IPC namespace's parameters (runc's list). */
const IPC_SYSCTLS = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

/**
 * `linux.sysctl`, as runc checks it: only parameters of a namespace the container has of its
 * own (a new one, not joined: net.* with a network namespace, the IPC ones with an IPC one,
 * kernel.hostname and kernel.domainname with a UTS one); the others would change the host.
 */
function readSysctl(v: Json, namespaces: Namespace[]): Record<string, string> {
  if (v === undefined || v === null) return {};
  const own = (type: NamespaceType) =>
    namespaces.some((n) => n.type === type && n.path === undefined);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(v as Record<string, Json>)) {
    const field = `linux.sysctl["${key}"]`;
    if (typeof value !== "string") throw new ConfigError(field, "expected a string value");
    if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)+$/.test(key)) {
      throw new ConfigError(field, "not a sysctl name");
    }
    const needs: NamespaceType | undefined = key.startsWith("net.")
      ? "network"
      : IPC_SYSCTLS.has(key) || key.startsWith("fs.mqueue.")
      ? "ipc"
      : key === "kernel.hostname" || key === "kernel.domainname"
      ? "uts"
      : undefined;
    if (needs === undefined) {
      throw new ConfigError(
        field,
        "not in a namespace of the container's own: it would change the host",
      );
    }
    if (!own(needs)) {
      throw new ConfigError(field, `needs a new ${needs} namespace (linux.namespaces)`);
    }
    out[key] = value;
  }
  return out;
}

/** OCI `linux.uidMappings` / `gidMappings` (the kernel takes at most 340 lines of a map). */
function readMappings(list: Json, field: string): IdMapping[] | undefined {
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw new ConfigError(field, "must be an array");
  if (list.length > 340) {
    throw new ConfigError(field, `${list.length} mappings: the kernel takes at most 340`);
  }
  return list.map((m: Json, i: number) => ({
    containerID: int(m?.containerID, `${field}[${i}].containerID`, 0),
    hostID: int(m?.hostID, `${field}[${i}].hostID`, 0),
    size: int(m?.size, `${field}[${i}].size`, 1),
  }));
}

function readNamespaces(list: Json): Namespace[] {
  const out: Namespace[] = [];
  (list ?? []).forEach((n: Json, i: number) => {
    const field = `linux.namespaces[${i}]`;
    if (!NAMESPACES.includes(n?.type)) {
      const which = n?.type === "time"
        ? `the ${n.type} namespace is not supported by mini-docker`
        : `unknown namespace type "${n?.type}"`;
      throw new ConfigError(`${field}.type`, which);
    }
    if (out.some((o) => o.type === n.type)) {
      throw new ConfigError(field, `the ${n.type} namespace is listed twice`);
    }
    const path = typeof n.path === "string" && n.path !== "" ? n.path : undefined;
    if (path !== undefined && n.type === "mount" && !libc.procTakesPidns()) {
      // The container's /proc is mounted there from outside it, for its PID namespace.
      throw new ConfigError(
        `${field}.path`,
        "joining a mount namespace needs Linux 6.18 or later (procfs's pidns option)",
      );
    }
    out.push({ type: n.type, ...(path !== undefined && { path }) });
  });
  return out;
}

/**
 * `/default/ID` (containerd), `/name`: below the cgroupfs root. Absent: the container's id there
 * (runc's is beside its own cgroup), removed with the container: no parent of ours is left.
 */
function readCgroupsPath(v: Json, id: string): string {
  if (v === undefined || v === null || v === "") return id;
  if (typeof v !== "string") throw new ConfigError("linux.cgroupsPath", "expected a string");
  if (v.includes(":")) {
    throw new ConfigError(
      "linux.cgroupsPath",
      `"${v}" is a systemd slice:prefix:name path: systemd cgroups are not supported`,
    );
  }
  const parts = v.split("/").filter((x) => x !== "");
  if (parts.length < 1 || parts.some((x) => x === "." || x === ".." || !/^[\w.@-]+$/.test(x))) {
    throw new ConfigError(
      "linux.cgroupsPath",
      `"${v}": expected a cgroup path such as /default/${id}`,
    );
  }
  return parts.join("/");
}

function readMount(m: Json, i: number, bundle: string): Mount {
  const field = `mounts[${i}]`;
  if (typeof m?.destination !== "string" || !m.destination.startsWith("/")) {
    throw new ConfigError(`${field}.destination`, "must be an absolute path");
  }
  refuseIfSet(m, `${field}.`, ["uidMappings", "gidMappings"], "idmapped mounts are not supported");
  const options = strings(m.options, `${field}.options`);
  for (const o of options) {
    if (REFUSED_MOUNT_OPTIONS.has(o)) {
      throw new ConfigError(`${field}.options`, `"${o}" is not supported by mini-docker`);
    }
  }
  const bind = m.type === "bind" || options.includes("bind") || options.includes("rbind");
  const type = typeof m.type === "string" && m.type !== "" ? m.type : bind ? "bind" : "";
  if (type === "") throw new ConfigError(`${field}.type`, "missing");
  let source = typeof m.source === "string" ? m.source : type;
  if (bind) {
    source = absolutePath(source.startsWith("/") ? source : `${bundle}/${source}`);
    // The host's side is trusted and resolved once, here (as runc does); the container's thread
    // then opens exactly this path and refuses any symlink on it (container/mounts.ts).
    try {
      source = Deno.realPathSync(source);
    } catch (err) {
      throw new ConfigError(`${field}.source`, `"${source}": ${(err as Error).message}`);
    }
    // A bind with "bind" alone in type: the options must say it too for mount(2).
    if (!options.includes("bind") && !options.includes("rbind")) options.unshift("rbind");
  }
  return { destination: m.destination, type, source, options };
}

/** OCI `linux.resources` (also `runtime update --resources`'s document). */
export function readResources(r: Json): LinuxResources {
  const out: LinuxResources = {};
  const unsupported = "not supported by mini-docker";
  refuseIfSet(r, "linux.resources.", ["blockIO", "hugepageLimits", "network", "rdma"], unsupported);
  refuseIfSet(r, "linux.resources.", ["unified"], unsupported);
  const m = r.memory ?? {};
  refuseIfSet(
    m,
    "linux.resources.memory.",
    ["kernel", "kernelTCP", "swappiness", "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"],
    unsupported,
  );
  const positive = (v: Json, field: string) =>
    v === undefined || v === null || v === 0 || v === -1 ? undefined : int(v, field, 1);
  const limit = positive(m.limit, "linux.resources.memory.limit");
  const reservation = positive(m.reservation, "linux.resources.memory.reservation");
  const swap = m.swap === -1 ? -1 : positive(m.swap, "linux.resources.memory.swap");
  if (limit !== undefined || reservation !== undefined || swap !== undefined) {
    out.memory = {
      ...(limit !== undefined && { limit }),
      ...(reservation !== undefined && { reservation }),
      ...(swap !== undefined && { swap }),
    };
  }
  const cpu = r.cpu ?? {};
  refuseIfSet(
    cpu,
    "linux.resources.cpu.",
    ["realtimeRuntime", "realtimePeriod", "burst", "idle"],
    unsupported,
  );
  const shares = positive(cpu.shares, "linux.resources.cpu.shares");
  const quota = positive(cpu.quota, "linux.resources.cpu.quota");
  const period = positive(cpu.period, "linux.resources.cpu.period");
  const cpus = typeof cpu.cpus === "string" && cpu.cpus !== "" ? cpu.cpus : undefined;
  const mems = typeof cpu.mems === "string" && cpu.mems !== "" ? cpu.mems : undefined;
  if ([shares, quota, cpus, mems].some((v) => v !== undefined)) {
    out.cpu = {
      ...(shares !== undefined && { shares }),
      ...(quota !== undefined && { quota, period: period ?? 100000 }),
      ...(cpus !== undefined && { cpus }),
      ...(mems !== undefined && { mems }),
    };
  }
  if (r.pids?.limit !== undefined && r.pids.limit !== null) {
    out.pids = { limit: int(r.pids.limit, "linux.resources.pids.limit", -1) };
  }
  if (Array.isArray(r.devices) && r.devices.length > 0) {
    const rules = r.devices.map((d: Json, i: number): LinuxDeviceCgroup => {
      const field = `linux.resources.devices[${i}]`;
      if (typeof d?.allow !== "boolean") throw new ConfigError(`${field}.allow`, "missing");
      if (d.type !== undefined && !["a", "b", "c"].includes(d.type)) {
        throw new ConfigError(`${field}.type`, `"${d.type}": expected a, b or c`);
      }
      if (d.access !== undefined && !/^[rwm]*$/.test(d.access)) {
        throw new ConfigError(`${field}.access`, `"${d.access}": expected some of rwm`);
      }
      return {
        allow: d.allow,
        ...(d.type !== undefined && { type: d.type }),
        ...(d.major !== undefined && d.major !== null && { major: d.major }),
        ...(d.minor !== undefined && d.minor !== null && { minor: d.minor }),
        ...(d.access !== undefined && d.access !== "" && { access: d.access }),
      };
    });
    out.devices = [...rules, ...ALLOWED_DEVICES];
  }
  return out;
}

function readSeccomp(s: Json): LinuxSeccomp {
  const field = "linux.seccomp";
  refuseIfSet(
    s,
    `${field}.`,
    ["listenerPath", "listenerMetadata"],
    "seccomp notify is not supported",
  );
  if (typeof s.defaultAction !== "string") {
    throw new ConfigError(`${field}.defaultAction`, "missing");
  }
  const actions = [s.defaultAction, ...(s.syscalls ?? []).map((x: Json) => x?.action)];
  if (actions.includes("SCMP_ACT_NOTIFY")) {
    throw new ConfigError(`${field}`, "SCMP_ACT_NOTIFY is not supported");
  }
  const syscalls = (s.syscalls ?? []).map((x: Json) => ({
    names: strings(x.names, `${field}.syscalls[].names`),
    action: x.action,
    ...(x.errnoRet !== undefined && { errnoRet: x.errnoRet }),
    ...(Array.isArray(x.args) && { args: x.args }),
  }));
  // The first process is spawned from the filtered thread (container/recipe.ts) by glibc's
  // posix_spawn, which needs two calls that profiles written before them (runtime-tools' default,
  // Docker's before 20.10) do not name, and so deny by their default action:
  // - clone3, after which glibc falls back to clone only on ENOSYS: it answers ENOSYS, as Docker's
  //   and containerd's profiles make it, and the spawn (and the container's programs) use clone,
  //   which the profile can inspect;
  // - close_range, which closes the engine's descriptors in the child before its execve (glibc's
  //   fallback reads /proc/self/fd, not mounted yet there): allowed, as in Docker's profile;
  //   closing one's own descriptors grants nothing.
  const denies = !["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"].includes(s.defaultAction);
  const named = (name: string) => syscalls.some((x: { names: string[] }) => x.names.includes(name));
  if (denies && !named("clone3")) {
    syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  }
  if (denies && !named("close_range")) {
    syscalls.push({ names: ["close_range"], action: "SCMP_ACT_ALLOW" });
  }
  return {
    defaultAction: s.defaultAction,
    ...(s.defaultErrnoRet !== undefined && { defaultErrnoRet: s.defaultErrnoRet }),
    ...(Array.isArray(s.architectures) && { architectures: s.architectures }),
    ...(Array.isArray(s.flags) && { flags: s.flags }),
    syscalls,
  };
}

const ENOSYS = 38;
