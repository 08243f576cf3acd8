/**
 * Docker's default confinement as spec parts, and the `run` flags that change it: capabilities
 * (`--cap-add`, `--cap-drop`), `--privileged`, `--security-opt` (seccomp, no-new-privileges),
 * `--device`, and the device rules every container gets. The result goes into the container's
 * spec; the engine applies it (container/recipe.ts, cgroups/devices.ts).
 */
import type { Device, LinuxCapabilities, LinuxDeviceCgroup, LinuxSeccomp } from "../base/spec.ts";
import { UserError } from "../base/errors.ts";
import { containerCapabilities } from "./capabilities.ts";

/**
 * The device rules of every unprivileged container (Docker's defaults merged with runc's, as
 * they reach the kernel): nothing, except creating nodes (mknod) of any device, and using the
 * standard ones: null, zero, full, random, urandom, tty, console, ptmx, the pseudo-terminals,
 * and tun/tap; FUSE (10:229) is refused.
 */
export const DEFAULT_DEVICE_RULES: readonly LinuxDeviceCgroup[] = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  ...([[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2], [10, 200]] as const).map((
    [major, minor],
  ) => ({ allow: true, type: "c" as const, major, minor, access: "rwm" })),
  { allow: true, type: "c", major: 136, access: "rwm" },
  { allow: false, type: "c", major: 10, minor: 229, access: "rwm" },
];

/** What the flags decide. */
export interface SecurityFlags {
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  privileged?: boolean;
  securityOpt?: readonly string[];
  device?: readonly string[];
}

/** The confinement of one container, as spec parts. */
export interface Confinement {
  capabilities: LinuxCapabilities;
  noNewPrivileges: boolean;
  seccomp?: LinuxSeccomp;
  /** Docker's default profile, left for the engine to resolve (see `confinement`). */
  defaultSeccomp?: boolean;
  devices: Device[];
  deviceRules: LinuxDeviceCgroup[];
  /** --privileged: no masked or read-only paths. */
  unmasked: boolean;
}

/**
 * Turns the flags into the container's confinement. Bad input is a UserError (125). With
 * `deferDefault`, Docker's own profile is not resolved here but marked `defaultSeccomp` (the
 * engine resolves it while the container's thread works: it takes milliseconds); a profile of
 * the user's is always read and checked here, before any work.
 */
export async function confinement(
  flags: SecurityFlags,
  user: { uid: number },
  opts: { deferDefault?: boolean } = {},
): Promise<Confinement> {
  const caps = containerCapabilities({
    add: flags.capAdd,
    drop: flags.capDrop,
    privileged: flags.privileged,
  });
  let noNewPrivileges = false;
  let profile: "default" | "unconfined" | string = "default";
  for (const option of flags.securityOpt ?? []) {
    const [key, value] = splitOption(option);
    if (key === "no-new-privileges" && (value === undefined || value === "true")) {
      noNewPrivileges = true;
    } else if (key === "no-new-privileges" && value === "false") {
      noNewPrivileges = false;
    } else if (key === "seccomp" && value !== undefined && value !== "") {
      profile = value;
    } else {
      throw new UserError(
        `Invalid --security-opt "${option}": use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges`,
      );
    }
  }
  let seccomp: LinuxSeccomp | undefined;
  const defaultSeccomp = !flags.privileged && profile === "default" && opts.deferDefault === true;
  if (!flags.privileged && profile !== "unconfined" && !defaultSeccomp) {
    const p = await import("./seccomp_profile.ts");
    const docker = profile === "default"
      ? p.defaultSeccompProfile()
      : p.readSeccompProfile(profile);
    seccomp = p.resolveSeccomp(docker, { capabilities: caps });
    checkStartable(seccomp, profile);
  }
  const devices: Device[] = [];
  const deviceRules: LinuxDeviceCgroup[] = flags.privileged
    ? [{ allow: true, access: "rwm" }]
    : [...DEFAULT_DEVICE_RULES];
  if (flags.privileged) devices.push(...hostDevices());
  for (const spec of flags.device ?? []) {
    const { device, rule } = deviceFromFlag(spec);
    devices.push(device);
    if (!flags.privileged) deviceRules.push(rule);
  }
  // Docker gives a root user the set as bounding, permitted and effective; any other user keeps
  // only the bounding set (its execve leaves it nothing effective), and nobody gets ambient.
  return {
    capabilities: {
      bounding: caps,
      permitted: user.uid === 0 ? caps : [],
      effective: user.uid === 0 ? caps : [],
      inheritable: [],
      ambient: [],
    },
    noNewPrivileges,
    seccomp,
    defaultSeccomp,
    devices,
    deviceRules,
    unmasked: flags.privileged === true,
  };
}

function splitOption(option: string): [string, string | undefined] {
  // Docker accepts "seccomp=x" and the older "seccomp:x".
  const at = option.search(/[=:]/);
  return at < 0 ? [option, undefined] : [option.slice(0, at), option.slice(at + 1)];
}

/**
 * `--device HOST[:CONTAINER[:PERMISSIONS]]`: the node is made in the container with the host
 * device's numbers, and a device rule lets the container use it (`rwm` by default).
 */
export function deviceFromFlag(spec: string): { device: Device; rule: LinuxDeviceCgroup } {
  const parts = spec.split(":");
  const host = parts[0] ?? "";
  let container = parts[1] ?? host;
  let access = parts[2] ?? "rwm";
  if (parts.length === 2 && /^[rwm]+$/.test(parts[1]!)) {
    // "--device /dev/x:rw": the second part is the permissions.
    container = host;
    access = parts[1]!;
  }
  if (parts.length > 3 || !host.startsWith("/") || !container.startsWith("/")) {
    throw new UserError(
      `Invalid --device "${spec}": use HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]] with absolute paths`,
    );
  }
  if (!/^[rwm]{1,3}$/.test(access)) {
    throw new UserError(
      `Invalid --device "${spec}": permissions "${access}" must be some of r, w and m`,
    );
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(host);
  } catch (err) {
    throw new UserError(`Cannot use --device "${host}": ${(err as Error).message}`);
  }
  const device = deviceNode(container, info);
  if (device === undefined) {
    throw new UserError(`Cannot use --device "${host}": it is not a device node`);
  }
  const { type, major, minor } = device;
  return { device, rule: { allow: true, type, major, minor, access } };
}

/** The device node `info` describes, to be made at `path`; undefined when it is not one. */
function deviceNode(
  path: string,
  info: Deno.FileInfo,
): (Device & { type: "c" | "b" }) | undefined {
  const type = info.isCharDevice ? "c" : info.isBlockDevice ? "b" : undefined;
  if (type === undefined || info.rdev === null) return undefined;
  const { major, minor } = splitDev(info.rdev);
  return {
    path,
    type,
    major,
    minor,
    fileMode: (info.mode ?? 0o660) & 0o7777,
    uid: info.uid ?? 0,
    gid: info.gid ?? 0,
  };
}

/** Linux dev_t into major and minor (glibc's gnu_dev_major/minor). */
function splitDev(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** Every device node of the host's /dev, for --privileged (Docker gives them all). */
function hostDevices(): Device[] {
  const out: Device[] = [];
  const skip = new Set(["/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console", "/dev/ptmx"]);
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      if (skip.has(path)) continue;
      if (e.isDirectory) {
        walk(path);
        continue;
      }
      try {
        const device = deviceNode(path, Deno.lstatSync(path));
        if (device !== undefined) out.push(device);
      } catch { /* gone */ }
    }
  };
  walk("/dev");
  return out;
}

/** Default actions after which a system call the filter does not allow ends the caller. */
const KILLING = new Set([
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_TRAP",
]);

/**
 * What the thread that starts a container still calls once its filter is installed: capset,
 * then posix_spawn (the child's stack, clone or clone3, the child's signals and descriptors, its
 * execve or exit), then its own end (V8's memory and futexes).
 */
const NEEDED_AFTER_FILTER = [
  "capset",
  "mmap",
  "munmap",
  "mprotect",
  "madvise",
  "clone",
  "rt_sigprocmask",
  "rt_sigaction",
  "dup2",
  "close",
  "close_range",
  "openat",
  "fchdir",
  "chdir",
  "execve",
  "exit",
  "exit_group",
  "futex",
  "write",
];

/**
 * A filter whose default action kills must still let the container start: the thread that
 * installs it goes on to spawn the command under it, and a kill there would leave the start
 * half-done. Such a profile must allow (unconditionally) what that takes; clone3 may also be
 * answered with an errno (glibc then falls back to clone), as Docker's profile does.
 */
function checkStartable(filter: LinuxSeccomp, source: string): void {
  if (!KILLING.has(filter.defaultAction)) return;
  const allowed = new Set<string>();
  let clone3 = false;
  for (const rule of filter.syscalls ?? []) {
    const plain = rule.args === undefined || rule.args.length === 0;
    for (const name of rule.names) {
      if (plain && rule.action === "SCMP_ACT_ALLOW") allowed.add(name);
      if (
        name === "clone3" && (rule.action === "SCMP_ACT_ALLOW" || rule.action === "SCMP_ACT_ERRNO")
      ) {
        clone3 = true;
      }
    }
  }
  const missing = NEEDED_AFTER_FILTER.filter((name) => !allowed.has(name));
  if (!clone3) missing.push("clone3 (allowed, or SCMP_ACT_ERRNO)");
  if (missing.length > 0) {
    throw new UserError(
      `Seccomp profile "${source}" kills by default (${filter.defaultAction}) but does not allow ${
        missing.join(", ")
      }, which starting the container's first process needs: allow them, or default to SCMP_ACT_ERRNO`,
    );
  }
}
