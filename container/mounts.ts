/**
 * The mounts of a container's root, each taking the kernel as a parameter (see kernel.ts): the
 * root itself (overlayfs of layers, or a bind), the spec's mounts resolved inside the root, the
 * device nodes, pivot_root, and the paths Docker hides or makes read-only.
 */
import type { ContainerSpec, Mount } from "../base/spec.ts";
import * as libc from "../base/libc.ts";
import type { Kernel } from "./kernel.ts";

/** Where a container finds the init of `run --init` (Docker's path), bind-mounted read-only. */
export const INIT_PATH = "/sbin/docker-init";

/** Mounts the container's root at `spec.root.path`: overlayfs of layers, or a bind of one dir. */
export function assembleRoot(k: Kernel, spec: ContainerSpec): void {
  const root = spec.root.path;
  const layers = spec.rootLayers;
  if (layers === undefined || (layers.lower.length === 1 && layers.upper === undefined)) {
    // One read-only directory (or root.path itself) becomes a mount point.
    k.mount(layers?.lower[0] ?? root, root, "", libc.MS_BIND | libc.MS_REC);
    return;
  }
  let lower = layers.lower;
  // mount(2) takes one page of options: with many layers, name them relative to their common
  // directory (overlayfs resolves them against the caller's working directory, as Docker does).
  const base = commonDir(lower);
  if (lower.join(":").length > 3000 && base !== "") {
    k.chdir(base);
    lower = lower.map((l) => l.slice(base.length + 1));
  }
  const data = layers.upper === undefined
    ? `lowerdir=${lower.join(":")}`
    : `lowerdir=${lower.join(":")},upperdir=${layers.upper},workdir=${layers.work}`;
  k.mount("overlay", root, "overlay", layers.upper === undefined ? libc.MS_RDONLY : 0, data);
  k.chdir("/");
}

function commonDir(paths: string[]): string {
  let base = paths[0]?.slice(0, paths[0].lastIndexOf("/")) ?? "";
  while (base !== "" && !paths.every((p) => p.startsWith(`${base}/`))) {
    base = base.slice(0, base.lastIndexOf("/"));
  }
  return base;
}

const MOUNT_FLAGS: Record<string, [set: boolean, flag: number]> = {
  ro: [true, libc.MS_RDONLY],
  rw: [false, libc.MS_RDONLY],
  nosuid: [true, libc.MS_NOSUID],
  suid: [false, libc.MS_NOSUID],
  nodev: [true, libc.MS_NODEV],
  dev: [false, libc.MS_NODEV],
  noexec: [true, libc.MS_NOEXEC],
  exec: [false, libc.MS_NOEXEC],
  noatime: [true, libc.MS_NOATIME],
  strictatime: [true, libc.MS_STRICTATIME],
  bind: [true, libc.MS_BIND],
  rbind: [true, libc.MS_BIND | libc.MS_REC],
  atime: [false, libc.MS_NOATIME],
  nostrictatime: [false, libc.MS_STRICTATIME],
  relatime: [true, libc.MS_RELATIME],
  norelatime: [false, libc.MS_RELATIME],
  nodiratime: [true, libc.MS_NODIRATIME],
  diratime: [false, libc.MS_NODIRATIME],
  sync: [true, libc.MS_SYNCHRONOUS],
  async: [false, libc.MS_SYNCHRONOUS],
  dirsync: [true, libc.MS_DIRSYNC],
  mand: [true, libc.MS_MANDLOCK],
  nomand: [false, libc.MS_MANDLOCK],
  lazytime: [true, libc.MS_LAZYTIME],
  nolazytime: [false, libc.MS_LAZYTIME],
  silent: [true, libc.MS_SILENT],
  loud: [false, libc.MS_SILENT],
  defaults: [false, 0],
};

/** mount(8)'s propagation words: applied by a mount call of their own after the mount. */
const PROPAGATION: Record<string, number> = {
  private: libc.MS_PRIVATE,
  rprivate: libc.MS_PRIVATE | libc.MS_REC,
  shared: libc.MS_SHARED,
  rshared: libc.MS_SHARED | libc.MS_REC,
  slave: libc.MS_SLAVE,
  rslave: libc.MS_SLAVE | libc.MS_REC,
  unbindable: libc.MS_UNBINDABLE,
  runbindable: libc.MS_UNBINDABLE | libc.MS_REC,
};

/** The mount option words mini-docker applies itself (the others are the filesystem's data). */
export const MOUNT_OPTION_WORDS: readonly string[] = [
  ...Object.keys(MOUNT_FLAGS),
  ...Object.keys(PROPAGATION),
].sort();

/**
 * Splits mount(8) option words into mount(2) flags, the filesystem's data string, and the
 * propagation changes to apply after the mount.
 */
export function parseMountOptions(
  options: readonly string[],
): { flags: number; data: string; propagation: number[] } {
  let flags = 0;
  const data: string[] = [];
  const propagation: number[] = [];
  for (const option of options) {
    const known = MOUNT_FLAGS[option];
    const change = PROPAGATION[option];
    if (change !== undefined) propagation.push(change);
    else if (known === undefined) data.push(option);
    else if (known[0]) flags |= known[1];
    else flags &= ~known[1];
  }
  return { flags, data: data.join(","), propagation };
}

/**
 * A procfs shows the PID namespace of the process that mounts it (or, since Linux 6.18, the one
 * it names), and the container's PID namespace has no process before its first one, which
 * cannot mount anything: so the container's /proc is a bind of an empty host directory, a slave
 * of it, that the parent fills once the first process exists (start.ts, `fillProc`).
 */
export interface ProcPeer {
  /** A host directory mounted on itself, shared. */
  root: string;
  /** The directory in it that becomes the container's /proc. */
  dir: string;
}

/** One entry of spec.mounts, under the container's root (before pivot_root). */
export function mountInto(
  k: Kernel,
  root: string,
  m: Mount,
  proc: ProcPeer,
  cgroupDirs: readonly string[] = [],
): void {
  const target = secureJoin(root, m.destination);
  const { flags, data, propagation } = parseMountOptions(m.options);
  if (m.type === "proc") {
    // A slave of the host directory: what the parent mounts there appears here.
    ensureMountPoint(target, true);
    k.mount(proc.dir, target, "", libc.MS_BIND);
    return;
  }
  if (m.type === "cgroup") {
    mountCgroup(k, target, flags, cgroupDirs);
  } else if (flags & libc.MS_BIND) {
    const isDir = Deno.statSync(m.source).isDirectory;
    ensureMountPoint(target, isDir);
    k.mount(m.source, target, "", flags & (libc.MS_BIND | libc.MS_REC));
    // Bind mounts ignore other flags until remounted.
    const rest = flags & ~(libc.MS_BIND | libc.MS_REC);
    if (rest !== 0) k.mount("", target, "", libc.MS_REMOUNT | libc.MS_BIND | rest);
  } else {
    ensureMountPoint(target, true);
    k.mount(m.source, target, m.type, flags, data);
  }
  for (const change of propagation) k.mount("", target, "", change);
}

/** The flags that a read-only bind keeps from a "cgroup" mount's options. */
const BIND_KEEPS = libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC |
  libc.MS_RELATIME | libc.MS_NOATIME;

/**
 * A mount of type "cgroup" (OCI bundles, runc's way without a cgroup namespace): the container's
 * own cgroup, its directories bound. On cgroup v2, its one directory at `target`; on v1 a tmpfs
 * at `target` with each hierarchy's directory of the container under the hierarchy's name (and
 * the host's links: "cpu" -> "cpu,cpuacct"), then made read-only as the options say.
 */
function mountCgroup(k: Kernel, target: string, flags: number, dirs: readonly string[]): void {
  if (dirs.length === 0) throw new Error("the container's cgroup is not known to its thread");
  ensureMountPoint(target, true);
  const bind = (dir: string, at: string) => {
    k.mount(dir, at, "", libc.MS_BIND);
    k.mount("", at, "", libc.MS_REMOUNT | libc.MS_BIND | (flags & BIND_KEEPS));
  };
  const hierarchy = (dir: string) => dir.slice(CGROUP_ROOT.length + 1).split("/")[0]!;
  let v2 = false;
  try {
    v2 = Deno.statSync(`${CGROUP_ROOT}/cgroup.controllers`).isFile;
  } catch { /* v1 or hybrid */ }
  if (v2) {
    bind(dirs[0]!, target);
    return;
  }
  const fsFlags = flags & (libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC);
  k.mount("tmpfs", target, "tmpfs", fsFlags, "mode=755");
  const names = new Set<string>();
  for (const dir of dirs) {
    const name = hierarchy(dir);
    names.add(name);
    ensureMountPoint(`${target}/${name}`, true);
    bind(dir, `${target}/${name}`);
  }
  for (const name of names) {
    for (const controller of name.split(",")) {
      if (controller === name || names.has(controller)) continue;
      try {
        Deno.symlinkSync(name, `${target}/${controller}`);
      } catch { /* there already */ }
    }
  }
  if (flags & libc.MS_RDONLY) {
    k.mount("", target, "", libc.MS_REMOUNT | libc.MS_RDONLY | fsFlags);
  }
}

const CGROUP_ROOT = "/sys/fs/cgroup";

function ensureMountPoint(path: string, dir: boolean): void {
  try {
    Deno.lstatSync(path);
  } catch {
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (parent !== "") Deno.mkdirSync(parent, { recursive: true, mode: 0o755 });
    if (dir) Deno.mkdirSync(path, { recursive: true, mode: 0o755 });
    else Deno.writeFileSync(path, new Uint8Array(), { mode: 0o644 });
  }
}

/**
 * `root` + `path`, resolving symlinks as if `root` were `/`, so that a symlink in an image
 * (`/etc/hostname -> /etc/shadow`) can never send a mount or a mkdir to the host.
 */
export function secureJoin(root: string, path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  const resolved: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const candidate = `${root}/${[...resolved, part].join("/")}`;
    let link: string | undefined;
    try {
      if (Deno.lstatSync(candidate).isSymlink) link = Deno.readLinkSync(candidate);
    } catch {
      // Missing components are created later, as directories.
    }
    if (link === undefined) {
      resolved.push(part);
      continue;
    }
    if (++hops > 40) throw new Error(`too many levels of symbolic links in "${path}"`);
    if (link.startsWith("/")) resolved.length = 0;
    parts.unshift(...link.split("/").filter((p) => p !== "" && p !== "."));
  }
  return `${root}/${resolved.join("/")}`;
}

/** OCI linux.devices plus the standard /dev symlinks. */
export function createDevices(k: Kernel, spec: ContainerSpec): void {
  const root = spec.root.path;
  for (const d of spec.linux.devices) {
    const path = secureJoin(root, d.path);
    const kind = d.type === "b" ? libc.S_IFBLK : d.type === "p" ? libc.S_IFIFO : libc.S_IFCHR;
    ensureMountPoint(path.slice(0, path.lastIndexOf("/")), true);
    try {
      k.mknod(path, kind | d.fileMode, libc.makedev(d.major, d.minor));
    } catch (err) {
      // The rootfs has its own node there (/dev is not a fresh tmpfs): ours replaces it.
      if (!(err instanceof libc.SyscallError && err.errno === libc.EEXIST)) throw err;
      Deno.removeSync(path);
      k.mknod(path, kind | d.fileMode, libc.makedev(d.major, d.minor));
    }
    Deno.chownSync(path, d.uid, d.gid);
  }
  const links: [string, string][] = [
    ["/proc/self/fd", "fd"],
    ["/proc/self/fd/0", "stdin"],
    ["/proc/self/fd/1", "stdout"],
    ["/proc/self/fd/2", "stderr"],
    ["pts/ptmx", "ptmx"],
  ];
  const dev = secureJoin(root, "/dev");
  for (const [target, name] of links) {
    try {
      Deno.symlinkSync(target, `${dev}/${name}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
}

/** Makes `root` the root of this mount namespace and detaches the host's root. */
export function pivot(k: Kernel, root: string): void {
  // pivot_root(".", "."): the old root is stacked under the new one and detached at once, so
  // no directory for it is needed inside the container (the runc idiom).
  k.chdir(root);
  k.pivotRoot(".", ".");
  k.umount2(".", libc.MNT_DETACH);
  k.chdir("/");
}

/** Hides `path` (a directory: an empty read-only tmpfs; a file: /dev/null). */
export function mask(k: Kernel, path: string, devNull = "/dev/null"): void {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch {
    return; // Nothing to hide.
  }
  if (stat.isDirectory) k.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY, "size=0k,mode=000");
  else k.mount(devNull, path, "", libc.MS_BIND);
}

/**
 * Makes `path` read-only, nosuid, nodev and noexec, in one step: a bind mount that a later
 * remount made read-only could be remounted read-write again by whoever can remount.
 */
export function makeReadonly(k: Kernel, path: string): void {
  try {
    Deno.statSync(path);
  } catch {
    return;
  }
  k.bindWithAttributes(
    path,
    libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV |
      libc.MOUNT_ATTR_NOEXEC,
  );
}

/** The whole root read-only (`--read-only`, or the fallback without overlayfs). */
export function remountRootReadonly(k: Kernel): void {
  k.mount("", "/", "", libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY);
}
